"""A new tenant's nurture set-up: settings, the exit signal types, and seed 002 §5's five sequences.

Seed 002 §5 ("Nurture Sequence Design") gives each sequence its target, duration, number of emails
and goal; the figures below follow it (the sum of a sequence's delays is its duration):

    New Lead       raw leads            2–3 weeks   5 emails  qualify to MQL      (17 days)
    MQL Nurture    MQLs                 3–4 weeks   6 emails  move to SAL         (25 days)
    Re-engagement  stale leads          2 weeks     3 emails  reactivate/archive  (14 days)
    Post-demo      post-demo leads      1–2 weeks   4 emails  close decision      (11 days)
    Lost deal      lost opportunities   2–3 months  5 emails  re-enter pipeline   (84 days)

Ready scores follow the seed's bands (MQL from 41, SAL from 61): a raw or stale lead that reaches
MQL, or an MQL or lost deal that reaches SAL, leaves nurture and goes to a rep. The sequences ship
active so nurture works out of the box, but nothing is sent until the tenant enters its postal
address (every email's footer needs one). Copy is plain text; the footer adds the unsubscribe link
and the postal address, so the bodies carry neither.

Idempotent, part by part like `routing.defaults`: the settings row and each signal type are created
when missing, the sequences when the tenant has none yet (a tenant that deleted or renamed one keeps
its choice). `defaults_write()` takes the model classes, so the data migration runs the same code on
historical models.
"""
from __future__ import annotations

import re
import secrets

from django.db import transaction
from django.utils import timezone

from leadmgmt.audit.actors import Actor
from leadmgmt.audit.services import audit_record

from .models import bounce_secret_hash

EXIT_SIGNAL_TYPES: list[tuple[str, str]] = [("email_reply", "Email reply"), ("meeting_booked", "Meeting booked")]

HI = 'Hi {{ first_name|default:"there" }},'
SIGN_OFF = "Best regards,\n{{ owner_name }}\n{{ tenant_name }}"


_LIST_ITEM = re.compile(r"^(?:- |\d+\. )")


def _unwrap(text: str) -> str:
    """Paragraphs written wrapped in this file become one line each (mail clients wrap them to the
    screen); list items ("- ", "1. ") keep their own lines."""
    lines: list[str] = []
    for line in text.strip().splitlines():
        line = line.strip()
        if lines and line and lines[-1] and not _LIST_ITEM.match(line):
            lines[-1] = f"{lines[-1]} {line}"
        else:
            lines.append(line)
    return "\n".join(lines)


def _email(delay_days: int, subject: str, body: str, *, delay_hours: int = 0, condition: str = "always",
           when_false: str = "skip") -> dict:
    return {"delay_days": delay_days, "delay_hours": delay_hours, "subject": subject,
            "body": f"{HI}\n\n{_unwrap(body)}\n\n{SIGN_OFF}", "condition": condition, "when_false": when_false}


NEW_LEAD_STEPS = [
    _email(0, "Thanks for your interest in {{ tenant_name }}", """
Thank you for getting in touch with {{ tenant_name }}. I wanted to introduce myself and let you know
what to expect from us.

Over the next couple of weeks I will send you a handful of short, practical notes: how teams like
{{ company|default:"yours" }} usually get started, the questions that are worth answering early, and
what results look like once things are running. No fluff, and nothing you have to sign up for.

In the meantime, if there is something specific you are trying to solve, just reply to this email
and tell me about it. A sentence or two is enough, and I will point you to what is most useful.
""", delay_hours=1),
    _email(3, "How teams like {{ company|default:\"yours\" }} get started", """
Most teams that come to us start in one of three places:

1. They want a clearer picture of where their time and budget go today.
2. They have outgrown spreadsheets and manual hand-offs between teams.
3. They need to show results to leadership and cannot pull the numbers together quickly.

Each of these has a simple first step that takes less than a week and does not require changing
how everyone works on day one.

Which of the three sounds closest to your situation? Reply with the number and I will send you the
short guide we use with teams in that position.
"""),
    _email(4, "A quick question about your priorities", """
One question, if you have a moment: what would have to be true in six months for you to call this
project a success?

I ask because the answer usually decides where to start. Some teams care most about saving time,
others about visibility, others about growth. The right first step is different for each, and I
would rather send you something relevant than something generic.

Just hit reply; I read every answer personally.
"""),
    _email(4, "What results look like after 90 days", """
I am often asked what teams can realistically expect in the first three months, so here is an
honest picture.

In the first month, most teams replace the manual work that costs them the most hours. In the second,
they start trusting the numbers enough to make decisions with them. By the third month, the
conversation usually shifts from "is this working?" to "where else can we use it?".

The teams that get there fastest have one thing in common: a clear owner and one measurable goal
from the start. If it would help to talk through what that could look like at
{{ company|default:"your company" }}, reply and we will find a time that suits you.
"""),
    _email(6, "Should I keep in touch?", """
I have sent you a few notes over the past weeks and I do not want to crowd your inbox.

If now is a good time to explore this further, reply with "yes" and I will set up a short call to
understand your situation; no preparation needed on your side.

If the timing is not right, that is completely fine. I will check back in a while with anything new
that is relevant to you.

Thank you for reading.
"""),
]

MQL_NURTURE_STEPS = [
    _email(0, "Resources for your evaluation", """
Thank you for the time you have spent looking into {{ tenant_name }}. Since you are exploring
options, I put together what people in your position usually find most useful:

- an overview of how we work with teams of your size,
- the evaluation checklist our customers used when they compared vendors,
- the questions to ask any vendor about implementation and support.

Reply to this email and I will send over whichever of these is most useful to you right now.
"""),
    _email(4, "The questions buyers ask us most", """
When teams evaluate {{ tenant_name }}, the same questions come up again and again:

- How long does it take to get started? Usually a few weeks, with a named person helping you.
- Does it work with the tools we already use? In most cases, yes; we connect rather than replace.
- What does it cost as we grow? Pricing follows your usage, so there are no surprises.
- Who do we call when something goes wrong? A real person who knows your account.

If your question is not on this list, reply and ask. I would rather answer it now than have it
slow you down later.
"""),
    _email(5, "How to build the business case", """
At some point in most evaluations, someone asks for a business case. Here is the simple structure we
see work best:

1. The problem in numbers: hours lost, revenue at risk, or cost today.
2. The change: what will be different, and for whom.
3. The payback: when the savings or gains cover the cost.
4. The risk of waiting: what another quarter of the status quo costs.

One page is enough. Decision makers read short documents; they skim long ones.

If you are preparing one for {{ company|default:"your team" }}, I am happy to share the template we
give customers. Just reply and I will send it over.
"""),
    _email(5, "A template for your business case", """
Since you had a look at my last note on business cases, I thought a ready-made starting point might
save you some time.

Our template has the four sections already laid out, with example figures from teams similar to
{{ company|default:"yours" }} that you can replace with your own. Most people fill it in within an
hour.

Reply with "template" and I will send it to you today, along with a few notes on the numbers
finance teams tend to question.
""", condition="opened_previous", when_false="skip"),
    _email(5, "Would a 20-minute conversation help?", """
You have been looking into this for a few weeks now, so I wanted to offer something more direct than
email.

In a 20-minute call we can go through your situation, answer the questions that are still open, and
work out whether {{ tenant_name }} is a good fit for {{ company|default:"your team" }}. If it is not,
I will tell you, and point you to what might suit you better.

Reply with two or three times that work for you next week and I will send an invitation.
"""),
    _email(6, "Closing the loop", """
I do not want to keep filling your inbox if the timing is not right, so this is my last note in this
series.

If you would like to continue the conversation, simply reply and I will pick it up from there. If
your priorities have changed, I understand completely; you will hear from us only occasionally, with
things we think are genuinely useful.

Thank you for considering {{ tenant_name }}.
"""),
]

RE_ENGAGEMENT_STEPS = [
    _email(0, "Is now a better time?", """
When we last spoke, the timing was not quite right for you, and that is perfectly normal.

A lot can change in a few months: new priorities, new budgets, new people. So I wanted to ask
simply: is this worth looking at again for {{ company|default:"your team" }}?

A one-word reply is plenty. "Yes" and I will get in touch to hear what has changed; "later" and I
will check back at a better moment.
"""),
    _email(6, "What has changed since we last spoke", """
Since we were last in touch, we have made a number of improvements based on what customers asked for:
quicker set-up, more flexible reporting, and closer integration with the tools teams already use.

Some of the concerns people had when they first looked at {{ tenant_name }} have been addressed
along the way. If something held you back before, it may be worth a fresh look.

If you tell me what mattered most to you, I will let you know honestly whether it has changed.
"""),
    _email(8, "Should I close your file?", """
I have reached out a couple of times without hearing back, which usually means one of three things:

1. You are interested, but busy right now.
2. Someone else is looking after this on your side.
3. It is simply not a priority any more.

Any of these is fine. A quick reply with the number helps me make sure I only contact you when it
is useful. If I do not hear from you, I will assume it is number three and stop these emails.
"""),
]

POST_DEMO_STEPS = [
    _email(1, "Following up on your demo", """
Thank you for taking the time to see {{ tenant_name }} in action. I hope the session gave you a
clear picture of how it could work for {{ company|default:"your team" }}.

If any questions came up after the call, or if colleagues who were not there would like to see
something specific, reply to this email and I will take care of it.

As a next step, it usually helps to agree on what you need to see or know to make a decision. If you
share that with me, I will make sure you have it.
"""),
    _email(3, "Answers to the questions that usually come up after a demo", """
After a demo, the same few questions tend to come up in internal discussions:

- How much effort does the rollout take from our side?
- How do we move our existing data across?
- What does training look like for the wider team?
- What happens if we need help after go-live?

I am happy to answer any of these in writing, or to bring in a colleague from our implementation
team for a short call. Which would suit you better?
"""),
    _email(3, "What a rollout at {{ company|default:\"your company\" }} would look like", """
To make the decision easier, here is how a typical rollout runs:

- Week 1: kick-off, goals agreed, accounts and integrations set up.
- Weeks 2 and 3: data moved across, first team trained, first results checked together.
- Week 4: the wider team onboarded, reporting in place, a review of what comes next.

You would have a named contact throughout, and we would agree on success measures before we start.

If it would help, I can draft a plan with dates specific to {{ company|default:"your company" }}.
Just let me know.
"""),
    _email(4, "Where do things stand?", """
I wanted to check in on where things stand on your side.

If you are ready to move forward, reply and I will send over the paperwork and a proposed start date.
If there is something still holding you back, whether budget, timing or an open question, tell me
and we will see what we can do about it.

And if you have decided to go another way, I would appreciate knowing that too; it helps us improve.
"""),
]

LOST_DEAL_STEPS = [
    _email(14, "Thank you, and one quick question", """
Thank you again for considering {{ tenant_name }} a few weeks ago. I respect the decision you made,
and I hope the project is going well.

If you have a minute, I would value one piece of honest feedback: what was the main reason we were
not the right fit at the time? Price, timing, a missing feature, or something else entirely?

Your answer goes straight to our team and helps us get better. A one-line reply is more than enough.
"""),
    _email(14, "What we have been working on", """
A short update, since some of what we have shipped recently may be relevant to you.

Over the past months we have focused on the things customers told us mattered most: faster set-up,
more flexible pricing for growing teams, and better integration with the tools teams already rely
on.

If any of these were part of your decision before, I would be glad to show you what has changed.
Reply and I will send a short summary tailored to {{ company|default:"your team" }}.
"""),
    _email(21, "How other teams measured the switch", """
Teams that moved to {{ tenant_name }} after first choosing another option often tell us the same
thing: the deciding factor was not a single feature, but how much time their people got back once
the daily work ran smoothly.

If you are reviewing how your current setup is performing, a useful check is simple: how many hours
a week does your team still spend on manual work around it?

If the answer is more than you would like, I am happy to compare notes, with no obligation.
"""),
    _email(21, "Checking in on your current setup", """
It has been a couple of months since we last spoke, so I wanted to check in.

How is the current solution working out for {{ company|default:"your team" }}? If it is doing
everything you need, that is good news, and I will not take more of your time.

If some things are not quite where you hoped, I would be glad to hear about them. Even if we are not
the answer, I may be able to point you in a useful direction.
"""),
    _email(14, "Worth another look?", """
This is my last note for now.

If your needs have changed, or your contract is coming up for renewal, it may be worth taking another
look at {{ tenant_name }}. Reply and I will set up a short call to understand where you are today and
show you only what is relevant.

Either way, thank you for your time, and all the best with your projects.
"""),
]

# Every sequence: model values plus `duration_days` (seed 002's range for the sum of the delays).
DEFAULT_SEQUENCES: list[dict] = [
    {"name": "New Lead", "kind": "new_lead", "goal": "Qualify raw leads to MQL",
     "audience_classes": ["nurture", "future_fit"], "audience_stages": ["raw"], "audience_statuses": ["new", "recycled"],
     "ready_score": 41, "priority": 40, "auto_enroll": True, "duration_days": (14, 21), "steps": NEW_LEAD_STEPS},
    {"name": "MQL Nurture", "kind": "mql_nurture", "goal": "Move MQLs to SAL",
     "audience_stages": ["mql"], "ready_score": 61, "priority": 30, "auto_enroll": True, "duration_days": (21, 28),
     "steps": MQL_NURTURE_STEPS},
    {"name": "Re-engagement", "kind": "re_engagement", "goal": "Reactivate stale leads (recycled, or rejected as "
                                                                "“not now”), or let them go",
     "audience_statuses": ["recycled"], "ready_score": 41, "priority": 10, "auto_enroll": True,
     "duration_days": (14, 14), "steps": RE_ENGAGEMENT_STEPS},
    {"name": "Post-demo", "kind": "post_demo", "goal": "Bring leads who saw a demo to a decision",
     "ready_score": None, "priority": 50, "auto_enroll": False, "duration_days": (7, 14), "steps": POST_DEMO_STEPS},
    {"name": "Lost deal", "kind": "lost_deal", "goal": "Bring lost opportunities back into the pipeline",
     "audience_opportunity_lost": True, "ready_score": 61, "priority": 20, "auto_enroll": True,
     "duration_days": (60, 92), "steps": LOST_DEAL_STEPS},
]
SEQUENCE_FIELDS = ("name", "kind", "goal", "audience_classes", "audience_bands", "audience_stages", "audience_statuses",
                   "audience_sources", "audience_rejection_reasons", "audience_opportunity_lost", "ready_score",
                   "priority", "auto_enroll")
_LIST_FIELDS = {"audience_classes", "audience_bands", "audience_stages", "audience_statuses", "audience_sources",
                "audience_rejection_reasons"}


def _sequence_values(spec: dict) -> dict:
    values = {}
    for field in SEQUENCE_FIELDS:
        default = [] if field in _LIST_FIELDS else (False if field == "audience_opportunity_lost" else None)
        values[field] = list(spec[field]) if field in _LIST_FIELDS and field in spec else spec.get(field, default)
    return values


def defaults_write(*, tenant, settings_model, sequence_model, step_model, signal_type_model) -> dict[str, int]:
    """Create what `tenant` lacks of the defaults with the given model classes (real or historical);
    returns how many of each were created."""
    now = timezone.now()
    _settings, settings_created = settings_model._base_manager.get_or_create(
        tenant_id=tenant.pk, defaults={"from_name": tenant.name[:100], "bounce_secret": bounce_secret_hash(secrets.token_urlsafe(32))})
    signal_types = 0
    for name, label in EXIT_SIGNAL_TYPES:
        _row, created = signal_type_model._base_manager.get_or_create(
            tenant_id=tenant.pk, name=name, defaults={"label": label, "created_at": now})
        signal_types += int(created)
    sequences = steps = 0
    if not sequence_model._base_manager.filter(tenant_id=tenant.pk).exists():
        for spec in DEFAULT_SEQUENCES:
            sequence = sequence_model._base_manager.create(tenant_id=tenant.pk, status="active", created_at=now,
                                                           **_sequence_values(spec))
            step_model._base_manager.bulk_create([
                step_model(tenant_id=tenant.pk, sequence_id=sequence.pk, position=position, **step)
                for position, step in enumerate(spec["steps"], start=1)
            ])
            sequences += 1
            steps += len(spec["steps"])
    return {"settings": int(settings_created), "signal_types": signal_types, "sequences": sequences, "steps": steps}


@transaction.atomic
def nurture_defaults_create(*, tenant, actor: Actor) -> dict[str, int]:
    """Give `tenant` its nurture settings (postal address blank: nothing is sent until it is filled in),
    the `email_reply` and `meeting_booked` signal types and seed 002's five sequences (idempotent)."""
    from leads.models import SignalType

    from .models import NurtureSettings, Sequence, Step

    created = defaults_write(tenant=tenant, settings_model=NurtureSettings, sequence_model=Sequence,
                             step_model=Step, signal_type_model=SignalType)
    if any(created.values()):
        audit_record(tenant=tenant, actor=actor, action="nurture.defaults_created", object_type="tenancy.tenant",
                     object_id=tenant.pk, metadata={"created": created})
    return created
