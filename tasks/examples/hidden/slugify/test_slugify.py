"""Hidden test of slugify.py: copied into the workspace after the agent ended."""

from slugify import slugify

CASES = [
    ("Hello, World!", "hello-world"),
    ("  Grade what Claude DID  ", "grade-what-claude-did"),
    ("ccx 0.1 -- release", "ccx-0-1-release"),
    ("", ""),
]

for text, want in CASES:
    got = slugify(text)
    assert got == want, f"slugify({text!r}) returned {got!r}, expected {want!r}"
print(f"{len(CASES)} passed")
