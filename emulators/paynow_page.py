"""HTML of the PayNow emulator's paywall: one page, two buttons, no JavaScript."""

from __future__ import annotations

from markupsafe import escape

from emulators.paynow_state import Payment

_STYLE = "body{font-family:sans-serif;max-width:32rem;margin:3rem auto}button{margin-right:1rem}"


def paywall_html(payment: Payment) -> str:
    """The paywall for one payment: amount, description, Pay and Reject."""
    amount = f"{payment.amount // 100}.{payment.amount % 100:02d} {payment.currency}"
    buttons = ""
    if payment.status in ("NEW", "PENDING"):
        buttons = "".join(
            f'<form method="post" action="/paywall/{escape(payment.id)}/{action}" '
            f'style="display:inline"><input type="hidden" name="via" value="paywall">'
            f'<button type="submit" id="{action}">{label}</button></form>'
            for action, label in (("pay", "Pay"), ("reject", "Reject"))
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Paynow emulator</title>"
        f"<style>{_STYLE}</style></head><body><h1>Paynow (emulator)</h1>"
        f"<p>{escape(payment.description)}</p><p><strong>{escape(amount)}</strong></p>"
        f"<p>Payment <code>{escape(payment.id)}</code>: "
        f"<span id='status'>{escape(payment.status)}</span></p>{buttons}</body></html>"
    )


def result_html(payment: Payment) -> str:
    """Shown after Pay/Reject when the payment has no continueUrl to go back to."""
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>Paynow emulator</title></head>"
        f"<body><p>Payment <code>{escape(payment.id)}</code> is "
        f"<span id='status'>{escape(payment.status)}</span>.</p></body></html>"
    )
