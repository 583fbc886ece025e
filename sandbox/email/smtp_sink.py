"""A real SMTP server (aiosmtpd) that keeps every message it receives as an ``.eml`` file.

Dev mode's mail server, and the SMTP server of the end-to-end tests:

    python -m sandbox.email.smtp_sink --host 127.0.0.1 --port 2525 --mailbox .officeflow/mailbox
"""

from __future__ import annotations

import argparse
import email
import email.policy
import logging
import signal
import socket
import threading
import time
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

log = logging.getLogger(__name__)


class MailboxHandler:
    """Writes each accepted message to ``<mailbox>/<timestamp>-<n>.eml`` atomically."""

    def __init__(self, mailbox: Path) -> None:
        self.mailbox = mailbox
        self.mailbox.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._count = 0
        self.faults: list[tuple[str, str]] = []  # (reply, recipient or ""): see SmtpSink.refuse

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            fault = next((f for f in self.faults if not f[1] or f[1] in envelope.rcpt_tos), None)
            if fault is not None:
                self.faults.remove(fault)
                log.info("Refused message from %s to %s: %s", envelope.mail_from, envelope.rcpt_tos, fault[0])
                return fault[0]
            self._count += 1
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9:09d}-{self._count}.eml"
        content = envelope.original_content or envelope.content or b""
        if isinstance(content, str):
            content = content.encode()
        header = (f"X-OfficeFlow-Envelope-From: {envelope.mail_from}\r\n"
                  f"X-OfficeFlow-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n").encode()
        tmp = self.mailbox / f".{name}.tmp"
        tmp.write_bytes(header + content)
        tmp.rename(self.mailbox / name)
        log.info("Stored message from %s to %s as %s", envelope.mail_from, envelope.rcpt_tos, name)
        return "250 Message accepted for delivery"


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class SmtpSink:
    """Start/stop wrapper: ``with SmtpSink(mailbox, port=0) as sink: sink.port``."""

    def __init__(self, mailbox: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.mailbox = Path(mailbox)
        self.host = host
        # aiosmtpd probes its own port at start-up, so port 0 is resolved to a free port here.
        self.port = port or _free_port(host)
        self.controller = Controller(MailboxHandler(self.mailbox), hostname=host, port=self.port)

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def pending_refusals(self) -> list[tuple[str, str]]:
        """The refusals (reply, recipient) no message has met yet."""
        handler = self.controller.handler
        with handler._lock:
            return list(handler.faults)

    def refuse(self, *replies: str, to: str = "") -> None:
        """The next messages (to ``to`` only, when given) are refused with these replies, one each, in order (e.g.
        ``"451 4.3.0 Try again later"``, ``"554 5.7.1 Message rejected"``); nothing is stored for them."""
        handler = self.controller.handler
        with handler._lock:
            handler.faults.extend((reply, to) for reply in replies)

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        """Every stored message, oldest first, parsed."""
        return [
            email.message_from_bytes(path.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for path in sorted(self.mailbox.glob("*.eml"))
        ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox.email.smtp_sink", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--mailbox", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s smtp-sink %(message)s")
    sink = SmtpSink(args.mailbox, args.host, args.port).start()
    log.info("SMTP sink on %s:%d, mailbox %s", args.host, sink.port, args.mailbox.resolve())
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
