"""From bytes to a frame: readers, cell values, identifiers, header recognition."""
