"""Small shared helpers: errors, logging, file IO, torch utilities."""
