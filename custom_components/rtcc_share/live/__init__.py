"""The live view: everything the city can watch, over HLS or WebRTC."""
