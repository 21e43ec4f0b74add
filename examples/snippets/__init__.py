"""Snippets: a small pastebin that shows procman running a real app (web + clock)."""
