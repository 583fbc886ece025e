"""Email: Amazon SES v2 (:mod:`sandbox.email.ses`, service ``ses``), SendGrid v3 Mail Send
(:mod:`sandbox.email.sendgrid`, service ``sendgrid``) and a real SMTP server keeping every message as an
``.eml`` file (:mod:`sandbox.email.smtp_sink`, ``python -m sandbox.email.smtp_sink``).

Nothing is imported here: ``python -m sandbox.email.smtp_sink`` needs neither FastAPI service.
"""
