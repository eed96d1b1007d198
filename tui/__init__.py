"""The writer's terminal app (DESIGN §9), started by `storydiff tui`.

Imported only by that command, so `import storydiff` never loads Textual.
"""
