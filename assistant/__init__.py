"""Meeting-format assistant: in person or virtual, asked briefly and written into the invite."""
