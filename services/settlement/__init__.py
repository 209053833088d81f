"""Settlement: close a month into one statement per pair, published to both parties."""
