"""Hidden test of fizzbuzz.py: copied into the workspace after the agent ended."""

from fizzbuzz import fizzbuzz

want = ["1", "2", "Fizz", "4", "Buzz", "Fizz", "7", "8", "Fizz", "Buzz", "11", "Fizz", "13",
        "14", "FizzBuzz"]
got = fizzbuzz(15)
assert got == want, f"fizzbuzz(15) returned {got!r}, expected {want!r}"
print("1 passed")
