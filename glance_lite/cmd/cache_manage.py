"""glance-cache-manage: Glance's client of an api node's cache management routes
(/v1/cached_images, /v1/queued_images; the `cachemanage` filter), with its commands,
options, confirmations and outputs."""

import argparse
import datetime
import os
import sys
import time

import prettytable
import requests

from glance_lite import __version__

SUCCESS = 0
FAILURE = 1


class ServerError(Exception):
    def __init__(self, status: int, text: str):
        super().__init__(text)
        self.status = status


class CacheClient:
    def __init__(self, args):
        self.base = f"http://{args.host}:{args.port}/v1"
        self.headers = {"X-Auth-Token": args.os_auth_token} if args.os_auth_token else {}
        self.verify = not args.insecure

    def call(self, method: str, path: str):
        resp = requests.request(
            method, self.base + path, headers=self.headers, verify=self.verify, timeout=60
        )
        if resp.status_code >= 400:
            raise ServerError(resp.status_code, resp.text)
        return resp.json() if resp.content else None


def catch_error(action: str):
    def wrap(func):
        def wrapper(args):
            try:
                result = func(args)
                return SUCCESS if result is None else result
            except ServerError as err:
                if err.status == 404:
                    print(f"Cache management middleware not enabled on host {args.host}")
                    return FAILURE
                if err.status == 403:
                    print("Not authorized to make this request.")
                    return FAILURE
                return _failed(args, action, err)
            except Exception as err:
                return _failed(args, action, err)

        wrapper.__doc__ = func.__doc__
        return wrapper

    return wrap


def _failed(args, action: str, err: Exception) -> int:
    if args.debug:
        raise err
    print(f"Failed to {action}. Got error:")
    for piece in str(err).split("\n"):
        print(piece)
    return FAILURE


def _when(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).replace(tzinfo=None).isoformat()


@catch_error("show cached images")
def list_cached(args):
    """%(prog)s list-cached [options]

    List all images currently cached.
    """
    images = CacheClient(args).call("GET", "/cached_images")["cached_images"]
    if not images:
        print("No cached images.")
        return SUCCESS
    print(f"Found {len(images)} cached images...")
    table = prettytable.PrettyTable(
        ("ID", "Last Accessed (UTC)", "Last Modified (UTC)", "Size", "Hits")
    )
    table.align["Size"] = "r"
    table.align["Hits"] = "r"
    for image in images:
        accessed = image["last_accessed"]
        table.add_row(
            (
                image["image_id"],
                "N/A" if accessed == 0 else _when(accessed),
                _when(image["last_modified"]),
                image["size"],
                image["hits"],
            )
        )
    print(table.get_string())
    return SUCCESS


@catch_error("show queued images")
def list_queued(args):
    """%(prog)s list-queued [options]

    List all images currently queued for caching.
    """
    images = CacheClient(args).call("GET", "/queued_images")["queued_images"]
    if not images:
        print("No queued images.")
        return SUCCESS
    print(f"Found {len(images)} queued images...")
    table = prettytable.PrettyTable(("ID",))
    for image in images:
        table.add_row((image,))
    print(table.get_string())
    return SUCCESS


def _one_id(args, verb: str) -> str | None:
    if len(args.command) == 2:
        return args.command[1]
    print("Please specify one and only ID of the image you wish to ")
    print(f"{verb} from the cache as the first argument")
    return None


def _confirmed(args, question: str) -> bool:
    return args.force or user_confirm(question, default=False)


def _on_one_image(args, verb: str, question: str, method: str, path: str, done: str):
    """A command on the one image id given: confirmed unless --force, then one call."""
    image_id = _one_id(args, verb)
    if image_id is None:
        return FAILURE
    if not _confirmed(args, question.format(image_id)):
        return SUCCESS
    CacheClient(args).call(method, path.format(image_id))
    if args.verbose:
        print(done.format(image_id))
    return SUCCESS


@catch_error("queue the specified image for caching")
def queue_image(args):
    """%(prog)s queue-image <IMAGE_ID> [options]

    Queues an image for caching.
    """
    return _on_one_image(
        args,
        "queue",
        "Queue image {} for caching?",
        "PUT",
        "/queued_images/{}",
        "Queued image {} for caching",
    )


@catch_error("delete the specified cached image")
def delete_cached_image(args):
    """%(prog)s delete-cached-image <IMAGE_ID> [options]

    Deletes an image from the cache.
    """
    return _on_one_image(
        args,
        "delete",
        "Delete cached image {}?",
        "DELETE",
        "/cached_images/{}",
        "Deleted cached image {}",
    )


def _delete_all(args, what: str):
    """Empty the cache or the queue (`what`: cached or queued), confirmed unless --force."""
    if not _confirmed(args, f"Delete all {what} images?"):
        return SUCCESS
    num = CacheClient(args).call("DELETE", f"/{what}_images")["num_deleted"]
    if args.verbose:
        print(f"Deleted {num} {what} images")
    return SUCCESS


@catch_error("Delete all cached images")
def delete_all_cached_images(args):
    """%(prog)s delete-all-cached-images [options]

    Remove all images from the cache.
    """
    return _delete_all(args, "cached")


@catch_error("delete the specified queued image")
def delete_queued_image(args):
    """%(prog)s delete-queued-image <IMAGE_ID> [options]

    Deletes an image from the cache queue.
    """
    return _on_one_image(
        args,
        "delete",
        "Delete queued image {}?",
        "DELETE",
        "/queued_images/{}",
        "Deleted queued image {}",
    )


@catch_error("Delete all queued images")
def delete_all_queued_images(args):
    """%(prog)s delete-all-queued-images [options]

    Remove all images from the cache queue.
    """
    return _delete_all(args, "queued")


def print_help(args):
    """%(prog)s help <command>

    Output help for one of the commands.
    """
    if len(args.command) < 2:
        return SUCCESS
    command = lookup_command(args.command[1])
    print(command.__doc__ % {"prog": os.path.basename(sys.argv[0])})
    return SUCCESS


COMMANDS = {
    "help": (print_help, "Output help for one of the commands below"),
    "list-cached": (list_cached, "List all images currently cached"),
    "list-queued": (list_queued, "List all images currently queued for caching"),
    "queue-image": (queue_image, "Queue an image for caching"),
    "delete-cached-image": (delete_cached_image, "Purges an image from the cache"),
    "delete-all-cached-images": (delete_all_cached_images, "Removes all images from the cache"),
    "delete-queued-image": (delete_queued_image, "Deletes an image from the cache queue"),
    "delete-all-queued-images": (
        delete_all_queued_images,
        "Deletes all images from the cache queue",
    ),
}


def command_help() -> str:
    text = "Commands:\n\n"
    for name, (_, summary) in COMMANDS.items():
        shown = "help <command>" if name == "help" else name
        text += f"    {shown:<28}{summary}\n\n"
    return text


def lookup_command(name: str):
    try:
        return COMMANDS[name][0]
    except KeyError:
        print(f'\nError: "{name}" is not a valid command.\n')
        print(command_help())
        sys.exit(f"Unknown command: {name}")


def user_confirm(prompt: str, default: bool = False) -> bool:
    answer = input(f"{prompt} {'[Y/n]' if default else '[y/N]'} ")
    if answer == "":
        return default
    return answer.lower() in ("yes", "y")


def env(*names: str, default: str = "") -> str:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return default


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=command_help(), formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("command", default=["help"], nargs="*", help="The command to execute")
    p.add_argument("-v", "--verbose", action="store_true", help="Print more verbose output.")
    p.add_argument("-d", "--debug", action="store_true", help="Print debugging output.")
    p.add_argument(
        "-H", "--host", metavar="ADDRESS", default="0.0.0.0", help="Address of Glance API host."
    )
    p.add_argument(
        "-p",
        "--port",
        metavar="PORT",
        type=int,
        default=9292,
        help="Port the Glance API host listens on.",
    )
    p.add_argument(
        "-k",
        "--insecure",
        action="store_true",
        help="Use https without verifying the server's certificate.",
    )
    p.add_argument(
        "-f",
        "--force",
        action="store_true",
        help="Prevent select actions from requesting user confirmation.",
    )
    p.add_argument(
        "--os-auth-token",
        "-A",
        "--os_auth_token",
        "--auth_token",
        dest="os_auth_token",
        default=env("OS_AUTH_TOKEN"),
        help="Defaults to env[OS_AUTH_TOKEN].",
    )
    for flag, short, var in (
        ("username", "-I", "OS_USERNAME"),
        ("password", "-K", "OS_PASSWORD"),
        ("region-name", "-R", "OS_REGION_NAME"),
        ("tenant-id", None, "OS_TENANT_ID"),
        ("tenant-name", "-T", "OS_TENANT_NAME"),
        ("auth-url", "-N", "OS_AUTH_URL"),
    ):
        dest = "os_" + flag.replace("-", "_")
        names = [f"--os-{flag}", f"--{dest}"] + ([short] if short else [])
        p.add_argument(*names, dest=dest, default=env(var), help=f"Defaults to env[{var}].")
    p.add_argument(
        "-S",
        "--os_auth_strategy",
        dest="os_auth_strategy",
        metavar="STRATEGY",
        help="Authentication strategy (keystone or noauth).",
    )
    p.add_argument("--version", action="version", version=__version__)
    return p


def main(argv: list[str] | None = None) -> None:
    p = parser()
    args = p.parse_args(argv)
    if not args.command:
        args.command = ["help"]
    if args.command[0] == "help" and len(args.command) == 1:
        p.print_help()
        return
    command = lookup_command(args.command[0])
    start = time.time()
    result = command(args)
    if args.verbose:
        print(f"Completed in {time.time() - start:<0.4f} sec.")
    sys.exit(result)


if __name__ == "__main__":
    main()
