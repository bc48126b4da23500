"""``odibi_core.event_bus``, as the seed imports it: the EventBus lives in ``odibi_core.events``.

from odibi_core.event_bus import EventBus, EventPriority, create_summary_hook
"""

from odibi_core.events.bus import *  # noqa: F403 - this module is the seed's name for it
from odibi_core.events.bus import __all__  # noqa: F401
