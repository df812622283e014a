"""gemini wire shape: channel adapter, surface, translation to and from the pivot."""
