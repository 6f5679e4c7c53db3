"""Every URL and method glance-registry answers, in one table.

Paths matched by no row get 404 for the usual methods and 501 for any other method
(glance_lite.wsgi.Router). Unlike glance-api there is no 405 on /images: `DELETE
/images` is 404 and `FOO /images` is 501, as Glance's registry does.
"""

import routes

from glance_lite import wsgi
from glance_lite.registry.images import ImagesController
from glance_lite.registry.leases import LeasesController
from glance_lite.registry.members import MembersController
from glance_lite.registry.usage import UsageController

MEMBER_ALLOW = "PUT, DELETE"


def make_router(
    images: ImagesController,
    members: MembersController,
    usage: UsageController,
    leases: LeasesController,
) -> wsgi.Router:
    mapper = routes.Mapper()

    def connect(path: str, methods: list[str] | None, controller, action: str) -> None:
        conditions = {"method": methods} if methods else None
        mapper.connect(path, controller=controller, action=action, conditions=conditions)

    def reject(path: str, methods: list[str], allow: str) -> None:
        conditions = {"method": methods}
        mapper.connect(path, handler=wsgi.reject_method(allow), conditions=conditions)

    # Any method on the bare root lists images, as in Glance.
    connect("/", None, images, "index")
    connect("/images", ["GET"], images, "index")
    connect("/images", ["POST"], images, "create")
    connect("/images/detail", ["GET"], images, "detail")
    # PUT/DELETE /images/detail fall through to the {image_id} rows (image "detail": 404).
    connect("/images/{image_id}", ["GET"], images, "show")
    connect("/images/{image_id}", ["PUT"], images, "update")
    connect("/images/{image_id}", ["DELETE"], images, "delete")

    connect("/images/{image_id}/members", ["GET"], members, "index")
    connect("/images/{image_id}/members", ["PUT"], members, "update_all")
    reject("/images/{image_id}/members", ["POST"], MEMBER_ALLOW)
    connect("/images/{image_id}/members/{member}", ["PUT"], members, "update")
    connect("/images/{image_id}/members/{member}", ["DELETE"], members, "delete")
    reject("/images/{image_id}/members/{member}", ["GET", "HEAD", "POST", "PATCH"], MEMBER_ALLOW)

    # Any method lists the images shared with a member.
    connect("/shared-images/{member}", None, members, "index_shared_images")
    # glance-lite's own: what an owner's images take, for glance-api's storage quota.
    connect("/storage-usage", ["GET"], usage, "show")
    connect("/images/{image_id}/locations/{location_id}", ["DELETE"], usage, "delete_location")
    # glance-lite's own: the end of a delayed delete, for glance-scrubber.
    connect("/images/{image_id}/scrubbed", ["POST"], usage, "scrubbed")
    connect("/images/{image_id}/restore", ["POST"], usage, "restore")
    # glance-lite's own: upload leases (taken by the PUT that sets an image saving).
    connect("/images/{image_id}/lease", ["PUT"], leases, "renew")
    connect("/images/{image_id}/lease", ["DELETE"], leases, "release")
    connect("/leases/sweep", ["POST"], leases, "sweep")
    return wsgi.Router(mapper)
