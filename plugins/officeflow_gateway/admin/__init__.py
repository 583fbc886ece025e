"""OfficeFlow's admin views: server-rendered pages under ``/officeflow/admin`` that the Airflow UI shows in its
nav (the plugin's ``external_views``, category "OfficeFlow") and opens in an iframe.

The pages only decide what the signed-in user may see and do (with the auth manager, like the APIs); their
data and every change go through the JSON APIs under ``/officeflow/api/v1`` with ``fetch`` (same origin, the
browser's Airflow cookie, JSON bodies), which enforce the same permissions again. See docs/admin-views.md.
"""

from plugins.officeflow_gateway.admin.pages import PAGES, external_views, router

__all__ = ["PAGES", "external_views", "router"]
