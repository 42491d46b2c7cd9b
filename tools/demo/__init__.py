"""Set up the development instance for the demo: owner login and a lab-mode share."""
