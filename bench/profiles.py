"""How much the bench does: the full run (`make bench`) and the smoke run (`make bench-smoke`)
differ only in these numbers; both take the same code path and write the same report."""

from dataclasses import dataclass, replace

MIB = 1 << 20


@dataclass(frozen=True)
class Profile:
    name: str
    sizes_mib: tuple[int, ...]  # single transfers, one image per size
    repeats_big: int  # for transfers of 256 MiB and more
    repeats_small: int  # for everything else
    small_downloads: int = 45  # repeats of a download below 256 MiB (see download_repeats)
    parallel_clients: int = 64
    parallel_size_mib: int = 16
    creates: int = 2000  # images created per round; the list is taken with these present
    create_clients: int = 16
    head_calls: int = 200  # per round
    list_calls: int = 40  # per round (the figure is their median: a few ms each)
    list_limit: int = 1000
    disk_write_mib: int = 256
    disk_repeats: int = 5
    cache_sizes_mib: tuple[int, ...] = (16, 256, 1024)  # the image cache's figures

    def repeats(self, size_mib: int) -> int:
        return self.repeats_big if size_mib >= 256 else self.repeats_small

    def download_repeats(self, size_mib: int) -> int:
        """Downloads from the page cache are short (10 ms for 16 MiB, 0.1 s for 256 MiB)
        and swing with the machine from one to the next by up to 2x: `small_downloads`
        repeats below 256 MiB, twice the uploads' plus one below 1 GiB, so that the
        median of the ratios stays put from run to run."""
        if size_mib < 256:
            return self.small_downloads
        return self.repeats(size_mib) * (2 if size_mib < 1024 else 1) + (size_mib < 1024)


FULL = Profile("full", (16, 256, 1024), repeats_big=3, repeats_small=5)

SMOKE = Profile(
    "smoke",
    (1, 4),
    repeats_big=2,
    repeats_small=2,
    small_downloads=6,
    parallel_clients=16,
    parallel_size_mib=1,
    creates=50,
    create_clients=4,
    head_calls=20,
    list_calls=4,
    disk_write_mib=4,
    disk_repeats=2,
    cache_sizes_mib=(1,),
)


def with_4gib(profile: Profile) -> Profile:
    return replace(profile, sizes_mib=(*profile.sizes_mib, 4096))
