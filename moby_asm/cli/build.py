"""`moby-asm build` and `moby-asm cache`: build outputs and manage the content store."""

from __future__ import annotations

from pathlib import Path

import typer

from moby_asm.cli.output import ConsoleReporter, console, escape, interruptible, print_json, table

CacheOption = typer.Option(None, "--cache", help="Content store folder; default: $MOBY_ASM_CACHE_DIR/store "
                                                  "or the user cache folder.")
DebianMirrorOption = typer.Option(None, "--debian-mirror", metavar="URI",
                                  help="Debian archive for Debian-package components, e.g. http://HOST/debian; "
                                       "repeat for several. Default: the configuration file's, else apt's sources.")
DebianKeyringOption = typer.Option(None, "--debian-keyring", metavar="FILE",
                                   help="OpenPGP keyring that signs the --debian-mirror archives; default: apt's "
                                        "trusted keys.")


def build(
    assembly: Path = typer.Argument(Path("."), help="The assembly file, or a folder holding assembly.yml."),
    formats: list[str] = typer.Option(None, "--format", "-f", metavar="FORMAT",
                                      help="Output format; repeat for several. Default: the assembly's outputs."),
    builder: str = typer.Option(None, "--builder", metavar="NAME",
                                help="native, linuxkit or docker, for every format. Default: native where it can, "
                                     "linuxkit for disk images."),
    jobs: int = typer.Option(4, "--jobs", "-j", min=1, help="Steps run in parallel (pulls, image builds, builders)."),
    cache: Path = CacheOption,
    output: Path = typer.Option(None, "--output", "-o", help="Output folder; default: dist/ beside the assembly."),
    pull: bool = typer.Option(False, "--pull", help="Pull every image again even when the cache has it."),
    offline: bool = typer.Option(False, "--offline", help="Use only images in the cache; never contact a registry."),
    insecure: list[str] = typer.Option(None, "--insecure-registry", metavar="HOST[:PORT]",
                                       help="Allow plain HTTP to this registry (loopback hosts always are)."),
    mirrors: list[str] = typer.Option(None, "--mirror", metavar="REGISTRY=MIRROR",
                                      help="Fetch images of REGISTRY from MIRROR, e.g. docker.io=127.0.0.1:5000."),
    registry: str = typer.Option(None, "--registry", metavar="HOST[:PORT][/PATH]",
                                 help="Push images built from Docker build contexts here; default: the assembly's "
                                      "builder.registry, else keep them local."),
    engine: str = typer.Option(None, "--engine", metavar="URL",
                               help="Docker Engine for image builds and the docker builder; default: DOCKER_HOST, "
                                    "else unix:///var/run/docker.sock."),
    build_network: str = typer.Option(None, "--build-network", metavar="MODE",
                                      help="Network of RUN steps in image builds, e.g. none or host; default: "
                                           "the engine's."),
    debian_mirrors: list[str] = DebianMirrorOption,
    debian_keyring: Path = DebianKeyringOption,
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and what the cache holds; build nothing."),
    json: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Compose the assembly and build its outputs; images come from the cache or registries."""
    from moby_asm.build import BuildOptions, build_project
    from moby_asm.project import open_project

    project = open_project(assembly)
    options = BuildOptions(formats=list(formats or ()), builder=builder, jobs=jobs, cache=cache, output=output,
                           pull=pull, offline=offline, insecure=set(insecure or ()),
                           mirrors=parse_mirrors(mirrors or ()), registry=registry, engine=engine,
                           build_network=build_network, debian_mirrors=list(debian_mirrors or ()),
                           debian_keyring=debian_keyring)
    if dry_run:
        _dry_run(project, options, json)
        return
    reporter = ConsoleReporter()
    try:
        with interruptible("build interrupted; running steps were stopped, the cache is consistent and the "
                           "previous outputs are in place"):
            report = build_project(project, options, reporter)
    finally:
        reporter.close()
    _print_report(report, json)


def parse_mirrors(values: list[str]) -> dict[str, str]:
    from moby_asm.errors import InputError

    result = {}
    for value in values:
        registry, separator, mirror = value.partition("=")
        if not separator or not registry or not mirror:
            raise InputError(f"invalid --mirror {value!r}: expected REGISTRY=MIRROR, e.g. docker.io=127.0.0.1:5000")
        result[registry] = mirror
    return result


def _print_report(report, json: bool) -> None:
    rows = [{"format": o.format, "path": str(o.path), "size": o.size, "digest": o.digest, "image": o.image}
            for o in report.outputs]
    built = [{"component": b.component, "image": b.reference, "digest": b.digest, "how": b.how} for b in report.built]
    if json:
        print_json({"outputs": rows, "pulled": report.pulled, "cached": report.cached, "built": built,
                    "verified": report.verified})
        return
    output = table("format", "path", "size", "digest", title=f"{len(rows)} outputs in {report.output_dir}")
    for row in rows:
        output.add_row(row["format"], escape(row["path"]), _size(row["size"]), row["digest"][:19])
    console().print(output)
    for row in rows:
        if row["image"]:
            console().print(f"loaded into the Docker Engine as {escape(row['image'])}")
    for item in built:
        console().print(f"component {escape(item['component'])}: {item['how']} {escape(item['image'])} "
                        f"{item['digest'][:19]}")
    for reference, key_ids in report.verified.items():
        console().print(f"signed  {escape(reference)} (key {', '.join(key_ids)})")
    console().print(f"{len(report.pulled)} images pulled, {len(report.cached)} taken from the cache")


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _dry_run(project, options, json: bool) -> None:
    from moby_asm.build.runner import image_references
    from moby_asm.compose import compose
    from moby_asm.project import lock_project

    locked = lock_project(project, reporter=ConsoleReporter(), debian=options.debian())
    composition = compose(project, locked)
    store = _open_store(options.cache)
    platform = project.assembly.platforms[0]
    contexts = _context_images(locked, options.registry or project.assembly.builder.registry)
    contexts.update({record["image"]: record["image"] for record in locked.built.values() if "packages" in record})
    cached = {reference: _in_store(store, reference, platform) for reference in image_references(composition.config)
              if reference not in contexts}
    built = {reference: _in_store(store, reference, platform) for reference in contexts.values()}
    steps = composition.plan["steps"]
    if json:
        print_json({"steps": steps, "images": cached, "contextImages": built})
        return
    output = table("step", "kind", "key", title=f"plan: {len(steps)} steps")
    for step in steps:
        output.add_row(escape(step["id"]), step["kind"], step["key"][:19])
    console().print(output)
    for reference, present in cached.items():
        console().print(f"{'cached  ' if present else 'to pull '}  {escape(reference)}")
    for reference, present in built.items():
        console().print(f"{'cached  ' if present else 'to build'}  {escape(reference)}")


def _context_images(locked, registry: str | None) -> dict[str, str]:
    """Map the local tag of each component image built from a context to the reference it is built as."""
    from moby_asm.build.contexts import context_reference
    from moby_asm.compose.render import image_reference

    platform = locked.resolution.assembly.platforms[0]
    return {image_reference(entry, version, platform): context_reference(entry, version, platform, registry)
            for entry, version in locked.resolution.selected.values()
            if version.source is not None and version.source.build is not None}


def _in_store(store, reference: str, platform: str) -> bool:
    from moby_asm.build.images import stored_name
    from moby_asm.store.errors import StoreError

    try:
        store.image(stored_name(reference), platform)
    except StoreError:
        return False
    return True


cache_app = typer.Typer(help="Inspect and trim the content store of pulled images.", no_args_is_help=True)


@cache_app.command("ls")
def cache_list(cache: Path = CacheOption, json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the images in the content store and its size on disk."""

    store = _open_store(cache)
    images = [{"reference": reference, "digest": descriptor.digest} for reference, descriptor in store.iter_images()]
    usage = store.disk_usage()
    if json:
        print_json({"root": str(store.root), "images": images, "usage": vars(usage)})
        return
    output = table("reference", "digest", title=f"{len(images)} images in {store.root}")
    for image in images:
        output.add_row(escape(image["reference"]), image["digest"][:19])
    console().print(output)
    console().print(f"{usage.blobs} blobs, {_size(usage.total_bytes)}; "
                    f"prune would free {_size(usage.reclaimable_bytes)}")


@cache_app.command("prune")
def cache_prune(cache: Path = CacheOption,
                keep: list[str] = typer.Option(None, "--keep", metavar="REFERENCE",
                                               help="Keep only these images (repeat) and remove the others."),
                remove_all: bool = typer.Option(False, "--all", help="Remove every image."),
                json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Remove blobs that no image needs; with --keep or --all, remove images too."""

    from moby_asm.errors import InputError
    from moby_asm.registry.reference import parse_reference

    if remove_all and keep:
        raise InputError("--all and --keep contradict each other; give one of them")
    store = _open_store(cache)
    kept = set() if remove_all else (_stored_references(store, keep, parse_reference) if keep else None)
    result = store.prune(kept)
    if json:
        print_json(vars(result))
    else:
        console().print(f"removed {len(result.removed_references)} images and {result.removed_blobs} blobs, "
                        f"freed {_size(result.freed_bytes)}")


def _stored_references(store, wanted: list[str], parse_reference) -> set[str]:
    """Map each --keep reference to the stored one, short names included; reject one that matches none."""
    from moby_asm.errors import InputError

    stored = {str(parse_reference(reference)): reference for reference, _ in store.iter_images()}
    kept = set()
    for reference in wanted:
        match = stored.get(str(parse_reference(reference)))
        if match is None:
            raise InputError(f"--keep {reference}: no such image in the cache; run 'moby-asm cache ls' to see them")
        kept.add(match)
    return kept


def _open_store(cache: Path | None):
    """Open the content store; a folder that cannot be made or written is an error that names it."""
    from moby_asm.fileio import WriteFailed
    from moby_asm.store import ContentStore

    try:
        return ContentStore.open(cache)
    except OSError as error:
        raise WriteFailed(Path(error.filename or cache or "."), error.strerror or str(error)) from error
