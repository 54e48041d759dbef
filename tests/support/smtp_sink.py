"""A tiny SMTP server for latchkey's tests.

    python smtp_sink.py --port P --dir D [--tls starttls|implicit --cert C --key K]

Accepts every message on 127.0.0.1:P and writes it to D/<n>.json as
{"from", "to": [...], "subject", "text", "html", "raw"}, where text and html
are the decoded (quoted-printable, base64, charset) parts, as a mail client
would show them ("" when the message has no such part). The file is written under a temporary name and renamed, so
a reader never sees half of it. Needs aiosmtpd (scripts/setup installs it in
.tools/venv).
"""

import argparse
import asyncio
import email
import email.policy
import itertools
import json
import os
import signal
import ssl

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory):
        self.directory = directory
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message = email.message_from_bytes(raw, policy=email.policy.default)
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(message.get("subject", "")),
            "text": part_text(message, "plain"),
            "html": part_text(message, "html"),
            "raw": raw.decode("utf-8", errors="replace"),
        }
        n = next(self.counter)
        path = os.path.join(self.directory, f"{n}.json")
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1)
        os.replace(tmp, path)
        return "250 OK"


def part_text(message, subtype):
    part = message.get_body(preferencelist=(subtype,))
    return part.get_content() if part is not None else ""


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--tls", choices=["starttls", "implicit"])
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)

    tls = {}
    if args.tls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args.cert, args.key)
        if args.tls == "starttls":
            # STARTTLS is offered and required before MAIL FROM.
            tls = {"tls_context": context, "require_starttls": True}
        else:
            # TLS from the first byte (smtps://, port 465 style).
            tls = {"ssl_context": context}
    controller = Controller(
        Sink(args.dir), hostname=args.host, port=args.port, decode_data=False, **tls
    )
    controller.start()
    print(f"smtp_sink listening on {args.host}:{args.port}", flush=True)

    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        loop.run_until_complete(stop.wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
