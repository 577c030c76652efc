"""Service layer: every write the panel makes goes through here (web views and API stay thin).

``PanelService`` is the facade the app, the API, the web views, the CLI and the tests hold. It composes the
service modules, one per concern, each built on :class:`broadcaster.core.PanelCore` (the shared state):

* users and logins — :mod:`broadcaster.accounts`
* announcements, their speech and abbreviations — :mod:`broadcaster.announcements` (approval:
  :mod:`broadcaster.approval`; speech settings: :mod:`broadcaster.audio_settings`)
* schedules, timelines and node plans — :mod:`broadcaster.airtime`; their publication —
  :mod:`broadcaster.publication`
* zones, nodes and commands — :mod:`broadcaster.nodes` (presence, health, reports: :mod:`broadcaster.fleet`)
* node → panel messages — :mod:`broadcaster.ingest`
* emergencies — :mod:`broadcaster.emergency`; who may do what — :mod:`broadcaster.policy`

Imports go one way: this module imports the service modules, they import the core, never this module.
"""

from __future__ import annotations

from broadcaster.accounts import ROLES as ROLES
from broadcaster.accounts import Accounts
from broadcaster.airtime import Schedules
from broadcaster.announcements import Announcements
from broadcaster.core import MemoryPublisher as MemoryPublisher
from broadcaster.core import PanelCore
from broadcaster.core import Publisher as Publisher
from broadcaster.errors import ServiceError as ServiceError
from broadcaster.ingest import Ingest
from broadcaster.live import Live
from broadcaster.nodes import ZONE_KINDS as ZONE_KINDS
from broadcaster.nodes import Nodes
from broadcaster.publication import MAX_PLAN_ITEMS as MAX_PLAN_ITEMS
from broadcaster.publication import PlanPublication
from broadcaster.versions import Versions


class PanelService(Accounts, Announcements, Versions, Schedules, PlanPublication, Nodes, Ingest, Live,
                   PanelCore):
    """The panel's services, one object (see the module docstring for which module holds what)."""
