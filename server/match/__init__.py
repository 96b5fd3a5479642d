"""Image -> ambient sound (deepmersion): classify a picture, match a bed of sounds to its classes."""
