"""The image database behind glance-registry: `Database`, the one object it calls.

Only the registry (and glance-manage) use it. Each public method is one transaction,
retried as a whole when SQLite is busy or a server reports a deadlock (errors.py), and
returns plain dicts. The methods live by concern:

- images.py: image records and their locations (the hot paths);
- members.py: memberships;
- purge.py: glance-manage's purge and the rebuild of the stored listing entries;
- scrub.py: the end of a delayed delete (scrubbed, or restored);
- leases.py: upload leases (who is uploading an image, until when) and their sweep;
- transactions.py: the engine and the one transaction path they all take;
- rows.py, documents.py: image rows as dicts, visibility, the stored listing entry.

Values arrive typed and checked by the registry's handlers; the database checks only
what it alone can know (existence, visibility, ownership, conflicts).
"""

from glance_lite.db.images import Images, ListOptions
from glance_lite.db.leases import Leases
from glance_lite.db.members import Members
from glance_lite.db.purge import Maintenance
from glance_lite.db.scrub import Scrubbing

__all__ = ["Database", "ListOptions"]


class Database(Images, Members, Maintenance, Scrubbing, Leases):
    """Every method of the image database on one engine: Database.from_url(url) or
    Database(engine)."""
