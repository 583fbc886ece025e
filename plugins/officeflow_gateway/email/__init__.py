"""Email provider callbacks: bounces, complaints and deliveries reported by Amazon SES (over SNS) and SendGrid.

- :mod:`.routes`: ``POST /officeflow/email/ses`` and ``POST /officeflow/email/sendgrid`` (thin);
- :mod:`.sns`: SNS message parsing, signature verification, subscription confirmation;
- :mod:`.sendgrid`: SendGrid's signed Event Webhook (ECDSA) verification;
- :mod:`.events`: applying SES notifications and SendGrid events to the store (callable without HTTP);
- :mod:`.errors`: what the routes answer 400 and 403 to.

The email management API (statistics, suppressions) is :mod:`plugins.officeflow_gateway.api.email`.
"""
