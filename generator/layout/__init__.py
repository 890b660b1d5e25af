"""How each bureau's file looks: its layout and writers, planted defects and messy quirks."""
