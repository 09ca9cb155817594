"""The main job: `make demo`. Each section runs end to end on loopback."""

print("sendoff demo: nothing yet")
