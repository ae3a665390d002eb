"""The local emulator stack: Google's Pub/Sub fake, each function in its own process, and a push
bridge doing what Eventarc does."""
