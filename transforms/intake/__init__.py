"""Landing folders: stable files, the archive, which dataset a file is."""
