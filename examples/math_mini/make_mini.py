"""Write examples/math_mini/train.jsonl: 40 grade-school word problems, written by hand.

Each problem carries ``solution_expr``, a small Python arithmetic expression that states
how the answer follows from the numbers in the question; ``gold`` is that expression's
value, written as a plain number (GSM8K style: no units, no separators). The unit test
tests/unit/test_math_mini.py recomputes every gold from its expression, so a typo in
either is caught. Run: ``python examples/math_mini/make_mini.py``.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

# (question, solution_expr); the expressions use + - * / ** // % and parentheses only.
PROBLEMS: list[tuple[str, str]] = [
    (
        "Mia has 12 apples. She buys 3 bags with 6 apples in each bag. How many apples "
        "does she have now?",
        "12 + 3 * 6",
    ),
    (
        "A school bus carries 48 students. At the first stop 15 students get off and 7 get "
        "on. How many students are on the bus now?",
        "48 - 15 + 7",
    ),
    (
        "A baker makes 5 trays of cookies with 24 cookies on each tray. He sells 86 "
        "cookies. How many cookies are left?",
        "5 * 24 - 86",
    ),
    (
        "Tom reads 15 pages of his book every day. How many pages does he read in 3 weeks?",
        "15 * 7 * 3",
    ),
    (
        "A rope is 9 meters long. Sara cuts it into pieces that are 0.75 meters long. How "
        "many pieces does she get?",
        "9 / 0.75",
    ),
    (
        "Pencils cost $0.45 each. How much do 12 pencils cost, in dollars?",
        "0.45 * 12",
    ),
    (
        "A farmer has 7 cows and 13 chickens. How many legs do the animals have in total?",
        "7 * 4 + 13 * 2",
    ),
    (
        "A shirt costs $40. It is on sale for 25% off. What is the sale price in dollars?",
        "40 * (1 - 25 / 100)",
    ),
    (
        "Liam earns $12 an hour. He works 6 hours on Saturday and 4 hours on Sunday. How "
        "many dollars does he earn over the weekend?",
        "12 * (6 + 4)",
    ),
    (
        "A class has 28 students. Three quarters of them walk to school. How many students "
        "walk to school?",
        "28 * 3 / 4",
    ),
    (
        "A car travels at 60 kilometers per hour for 2.5 hours. How many kilometers does it "
        "travel?",
        "60 * 2.5",
    ),
    (
        "Emma has $50. She buys a book for $18.75 and a pen for $3.50. How many dollars "
        "does she have left?",
        "50 - 18.75 - 3.50",
    ),
    (
        "A garden is a rectangle 14 meters long and 9 meters wide. What is its perimeter "
        "in meters?",
        "2 * (14 + 9)",
    ),
    (
        "A garden is a rectangle 14 meters long and 9 meters wide. What is its area in "
        "square meters?",
        "14 * 9",
    ),
    (
        "There are 156 marbles shared equally among 12 children. How many marbles does "
        "each child get?",
        "156 / 12",
    ),
    (
        "A movie starts at 6:40 pm and lasts 135 minutes. How many minutes after 8:00 pm "
        "does it end?",
        "(6 * 60 + 40 + 135) - 8 * 60",
    ),
    (
        "Noah saves $15 every week. How many weeks does it take him to save $240?",
        "240 / 15",
    ),
    (
        "A box holds 24 bottles. How many boxes are needed to pack 200 bottles?",
        "-(-200 // 24)",
    ),
    (
        "Ava scored 82, 90 and 79 on three tests. What is her average score? Round to two "
        "decimal places if needed.",
        "round((82 + 90 + 79) / 3, 2)",
    ),
    (
        "A water tank holds 500 liters. It is 40% full. How many more liters are needed to "
        "fill it?",
        "500 - 500 * 40 / 100",
    ),
    (
        "Jake has 3 times as many stickers as Ben. Ben has 17 stickers. How many stickers "
        "do they have together?",
        "17 + 3 * 17",
    ),
    (
        "A pizza is cut into 8 slices. Four friends each eat 3 slices. How many pizzas did "
        "they eat?",
        "4 * 3 / 8",
    ),
    (
        "The temperature was -4 degrees in the morning and rose by 11 degrees by noon. "
        "What was the temperature at noon?",
        "-4 + 11",
    ),
    (
        "The temperature was 3 degrees at midnight and fell by 9 degrees by 5 am. What was "
        "the temperature at 5 am?",
        "3 - 9",
    ),
    (
        "A library had 1,250 books. It bought 375 new books and gave away 140 old ones. "
        "How many books does it have now?",
        "1250 + 375 - 140",
    ),
    (
        "A factory makes 2,400 toys a day. How many toys does it make in 30 days?",
        "2400 * 30",
    ),
    (
        "Olivia bought 3 notebooks at $2.25 each and paid with a $10 bill. How much change "
        "did she get, in dollars?",
        "10 - 3 * 2.25",
    ),
    (
        "A train has 9 cars. Each car has 16 rows of 4 seats. How many seats does the train have?",
        "9 * 16 * 4",
    ),
    (
        "A runner jogs 400 meters around a track 7 times. How many kilometers does she run?",
        "400 * 7 / 1000",
    ),
    (
        "Lucas has 45 minutes of homework in math and half as much in science. How many "
        "minutes of homework does he have in total?",
        "45 + 45 / 2",
    ),
    (
        "A store sold 120 ice creams on Monday and 25% more on Tuesday. How many ice "
        "creams did it sell on Tuesday?",
        "120 * 1.25",
    ),
    (
        "Grace is 4 years older than her brother. The sum of their ages is 26. How old is Grace?",
        "(26 + 4) / 2",
    ),
    (
        "A recipe uses 2 cups of flour for 12 muffins. How many cups of flour are needed "
        "for 30 muffins?",
        "2 * 30 / 12",
    ),
    (
        "A phone plan costs $25 a month plus $0.10 per text. Last month Zoe sent 130 texts. "
        "How many dollars was her bill?",
        "25 + 0.10 * 130",
    ),
    (
        "A tree was 1.8 meters tall. It grew 35 centimeters a year for 4 years. How many "
        "meters tall is it now?",
        "1.8 + 0.35 * 4",
    ),
    (
        "Henry had 64 trading cards. He gave a quarter of them to his sister and then "
        "bought 10 more. How many cards does he have?",
        "64 - 64 / 4 + 10",
    ),
    (
        "A concert hall has 35 rows with 28 seats each. 912 tickets were sold. How many "
        "seats are empty?",
        "35 * 28 - 912",
    ),
    (
        "Four friends split a restaurant bill of $86 equally. How many dollars does each pay?",
        "86 / 4",
    ),
    (
        "A cyclist rides 18 kilometers in 45 minutes. At the same speed, how many "
        "kilometers does she ride in 2 hours?",
        "18 / 45 * 120",
    ),
    (
        "A jar has 30 red, 45 blue and 25 green beads. What percent of the beads are blue?",
        "45 / (30 + 45 + 25) * 100",
    ),
]


def gold_of(expr: str) -> str:
    """The value of ``expr`` as a plain number: an integer when it is one, else the
    shortest decimal (every expression here has a terminating decimal value)."""
    value = eval(expr, {"__builtins__": {"round": round}})  # our own literals only
    exact = Fraction(str(value)) if isinstance(value, float) else Fraction(value)
    if exact.denominator == 1:
        return str(exact.numerator)
    return repr(float(exact))


def rows() -> list[dict[str, str]]:
    return [
        {"id": f"m{i:02d}", "question": q, "solution_expr": e, "gold": gold_of(e)}
        for i, (q, e) in enumerate(PROBLEMS, start=1)
    ]


def main() -> None:
    out = Path(__file__).resolve().parent / "train.jsonl"
    with out.open("w", encoding="utf-8") as fh:
        for row in rows():
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"wrote {len(PROBLEMS)} problems to {out}")


if __name__ == "__main__":
    main()
