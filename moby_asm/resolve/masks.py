"""Compute the candidates that a version range matches, as a bit mask, in logarithmic time."""

from __future__ import annotations

from bisect import bisect_left, bisect_right

from moby_asm.versions import Range, Version


class VersionMasks:
    """The versions of one package in preference order, indexed for range queries.

    Bit `i` of a mask stands for `versions[i]`. Versions are also kept sorted with
    prefix masks, so the versions inside one interval are found with two binary searches.
    Prereleases follow npm's rule: they match only an interval that names a
    prerelease of the same MAJOR.MINOR.PATCH.
    """

    def __init__(self, versions: list[Version]):
        order = sorted(range(len(versions)), key=lambda i: versions[i].sort_key)
        self.sorted_keys = [versions[i].sort_key for i in order]
        self.prefix = [0]
        for index in order:
            self.prefix.append(self.prefix[-1] | 1 << index)
        self.prerelease = 0
        self.prerelease_by_release: dict[tuple[int, int, int], int] = {}
        for index, version in enumerate(versions):
            if version.prerelease:
                self.prerelease |= 1 << index
                bits = self.prerelease_by_release.get(version.release, 0)
                self.prerelease_by_release[version.release] = bits | 1 << index

    def matching(self, version_range: Range) -> int:
        result = 0
        for interval in version_range.intervals:
            low = 0
            if interval.low is not None:
                search = bisect_left if interval.low_inclusive else bisect_right
                low = search(self.sorted_keys, interval.low.sort_key)
            high = len(self.sorted_keys)
            if interval.high is not None:
                search = bisect_right if interval.high_inclusive else bisect_left
                high = search(self.sorted_keys, interval.high.sort_key)
            if low >= high:
                continue
            inside = self.prefix[high] & ~self.prefix[low]
            allowed = 0
            for release in interval.prerelease_releases:
                allowed |= self.prerelease_by_release.get(release, 0)
            result |= inside & (~self.prerelease | allowed)
        return result
