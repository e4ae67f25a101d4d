"""KSeF numbers of docs/protocols/ksef.md, "KSeF number": 35 characters and a CRC-8 check.

Kwit only stores the numbers iFirma reports; the fake iFirma mints them. These vectors prove that
the emulator's numbers are shaped like the real ones, so tests never run on impossible numbers.
"""

from __future__ import annotations

from datetime import date

import pytest

from emulators.ifirma_rules import crc8, ksef_number

REAL_NUMBERS = [
    # The Ministry of Finance's own example (CIRFMF/ksef-docs, faktury/numer-ksef.md).
    pytest.param("5265877635", date(2025, 8, 26), "0100001AF629", "AF", id="mf-example"),
    # A number an iFirma client reports having read from the live API.
    pytest.param("5213500025", date(2026, 5, 20), "560CCC000005", "68", id="ifirma-live"),
]


@pytest.mark.parametrize(("nip", "day", "technical", "check"), REAL_NUMBERS)
def test_real_numbers_are_reproduced(nip: str, day: date, technical: str, check: str) -> None:
    number = ksef_number(nip, day, technical)
    assert number == f"{nip}-{day:%Y%m%d}-{technical}-{check}"
    assert len(number) == 35


@pytest.mark.parametrize(("nip", "day", "technical", "check"), REAL_NUMBERS)
def test_check_digits_are_crc8_of_the_first_32_characters(
    nip: str, day: date, technical: str, check: str
) -> None:
    head = f"{nip}-{day:%Y%m%d}-{technical}"
    assert len(head) == 32
    assert f"{crc8(head.encode('ascii')):02X}" == check


def test_the_example_exchange_number_ends_in_its_crc8() -> None:
    # docs/protocols/ifirma.md, "Example exchange". An earlier draft wrote it with -7A.
    assert ksef_number("5260250995", date(2026, 11, 23), "0a1b2c3d4e5f").endswith("-2C")
