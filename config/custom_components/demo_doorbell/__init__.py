"""A development-only doorbell camera: a looped H.264 test pattern with a clock.

Not part of the HACS package. The clip is generated once with PyAV and served
as an endless, real-time MPEG-TS stream on loopback, so Home Assistant's
stream component treats it like a live camera.
"""
