"""# Calendar maintenance

Every 15 minutes, keeps the calendar sync of the meetings OfficeFlow booked going:

```text
process_pending_notifications ── renew_subscriptions ── send_meeting_reminders
```

- **Pending notifications**: those the gateway stored but could not finish (a provider or Slack was
  down) are processed again: declines, moves and cancellations recorded, organizers told in Slack.
- **Subscriptions**: Google watch channels and Microsoft Graph subscriptions that expire within
  `OFFICEFLOW_CALENDAR_RENEW_BEFORE_MINUTES` are renewed (an expired one is replaced), and organizers of
  upcoming meetings whose calendar nothing watches get a subscription.
- **Reminders**: each booked meeting's organizer gets one Slack reminder
  `OFFICEFLOW_CALENDAR_REMINDER_LEAD_MINUTES` before it starts.
"""

# Airflow parses only the files of dags/ that mention both "airflow" and "dag" (core.dag_discovery_safe_mode)
# and skips the others without a word: this line makes sure this file is one (tests/unit/dags checks each is).

from __future__ import annotations

from operators.calendar import (
    MeetingRemindersOperator,
    ProcessCalendarNotificationsOperator,
    RenewCalendarSubscriptionsOperator,
)
from operators.workflow_dag import workflow_dag

with workflow_dag(
    "calendar_maintenance",
    display_name="Calendar maintenance",
    description="Process pending calendar notifications, renew watch channels and Graph subscriptions, and "
                "remind organizers in Slack before the meetings OfficeFlow booked.",
    owner="it-team",
    doc_md=__doc__,
    tags=["calendar", "it"],
    params={},
    schedule="*/15 * * * *",
    max_active_runs=1,
    with_run_params=False,
):
    (ProcessCalendarNotificationsOperator(task_id="process_pending_notifications")
     >> RenewCalendarSubscriptionsOperator(task_id="renew_subscriptions")
     >> MeetingRemindersOperator(task_id="send_meeting_reminders"))
