"""The provider's two HTML pages: the sign-in form and an error page. Plain, accessible HTML,
no scripts; every value is escaped."""

from __future__ import annotations

from html import escape

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem;line-height:1.5}"
    "label{display:block;margin-top:1rem;font-weight:600}"
    "input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}"
    "button{margin-top:1.5rem;padding:.6rem 1.2rem;font-size:1rem}"
    ".alert{border:2px solid #a00;padding:.5rem .75rem;color:#700}"
)

# No scripts, no framing; the form posts to this origin (its redirect goes to the client).
HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def login_page(client_name: str, login_id: str, csrf: str, *, username: str = "", message: str | None = None) -> str:
    alert = f'<p class="alert" role="alert" id="login-error">{escape(message)}</p>\n' if message else ""
    described = ' aria-describedby="login-error"' if message else ""
    body = (
        f"<h1>Sign in</h1>\n<p>to continue to <strong>{escape(client_name)}</strong></p>\n{alert}"
        '<form method="post" action="login">\n'
        f'<input type="hidden" name="login_id" value="{escape(login_id)}">\n'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf)}">\n'
        '<label for="username">Username</label>\n'
        f'<input id="username" name="username" type="text" autocomplete="username" autocapitalize="none" '
        f'spellcheck="false" required value="{escape(username)}"{described}>\n'
        '<label for="password">Password</label>\n'
        f'<input id="password" name="password" type="password" autocomplete="current-password" required{described}>\n'
        '<button type="submit">Sign in</button>\n</form>'
    )
    return _page(f"Sign in to {client_name}", body)


def error_page(message: str) -> str:
    body = (
        f'<h1>Sign-in problem</h1>\n<p role="alert">{escape(message)}</p>\n'
        "<p>Go back to the application and try again.</p>"
    )
    return _page("Sign-in problem", body)
