"""Every /v1 URL and method glance-api answers, in one table (docs/api.md).

A matched path with another method gets 405 and its Allow header; an unmatched path
gets 404 for the usual methods and 501 for others (glance_lite.wsgi.Router).
"""

import routes
import webob.exc

from glance_lite import wsgi
from glance_lite.api.images import ImagesController
from glance_lite.api.members import MembersController

DETAIL_HEAD = "This operation is currently not permitted on Glance images details."


def reject_detail_head(req, **_):
    raise webob.exc.HTTPMethodNotAllowed(explanation=DETAIL_HEAD, headers={"Allow": "GET"})


def make_router(images: ImagesController, members: MembersController) -> wsgi.Router:
    mapper = routes.Mapper()

    def connect(path: str, methods: list[str] | None, controller, action: str) -> None:
        conditions = {"method": methods} if methods else None
        mapper.connect(path, controller=controller, action=action, conditions=conditions)

    def otherwise(path: str, handler) -> None:
        mapper.connect(path, handler=handler)

    connect("/", None, images, "index")

    connect("/images", ["GET"], images, "index")
    connect("/images", ["POST"], images, "create")
    otherwise("/images", wsgi.reject_method("GET, POST"))

    connect("/images/detail", ["GET"], images, "detail")
    mapper.connect("/images/detail", handler=reject_detail_head, conditions={"method": ["HEAD"]})
    otherwise("/images/detail", wsgi.reject_method("GET, HEAD"))

    connect("/images/{image_id}", ["GET"], images, "show")
    connect("/images/{image_id}", ["HEAD"], images, "meta")
    connect("/images/{image_id}", ["PUT"], images, "update")
    connect("/images/{image_id}", ["DELETE"], images, "delete")
    otherwise("/images/{image_id}", wsgi.reject_method("GET, HEAD, PUT, DELETE"))

    connect("/images/{image_id}/members", ["GET"], members, "index")
    connect("/images/{image_id}/members", ["PUT"], members, "update_all")
    otherwise("/images/{image_id}/members", wsgi.reject_method("GET, PUT"))

    connect("/images/{image_id}/members/{member}", ["PUT"], members, "update")
    connect("/images/{image_id}/members/{member}", ["DELETE"], members, "delete")
    mapper.connect(
        "/images/{image_id}/members/{member}",
        handler=wsgi.reject_method(None),
        conditions={"method": ["GET"]},
    )
    otherwise("/images/{image_id}/members/{member}", wsgi.reject_method("GET, PUT, DELETE"))

    connect("/shared-images/{member}", None, members, "shared_images")
    return wsgi.Router(mapper)
