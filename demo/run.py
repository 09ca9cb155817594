"""The main job: `make demo`. Each section runs end to end on loopback."""

print("sendoff demo: nothing yet")
__import__("webhooks").main()  # issue 4: fire-and-forget webhooks
