"""OpenAI wire shape (chat completions): channel adapter and surface; it is the pivot."""
