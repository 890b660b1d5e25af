"""Person -> household resolution and the daily household snapshot."""
