"""`labctl sim …`: the ONTAP simulator and the simulated lab (filled in by the simulator and lab issues)."""

from __future__ import annotations

import click

from labctl.errors import UsageError


@click.group("sim")
def sim() -> None:
    """Run labctl's ONTAP simulator and simulated GPU hosts."""


# --- `labctl sim ontap` (ONTAP REST simulator; the code lives in labctl/sim/) ---------------------------------
@sim.command("ontap")
@click.option("--listen", default="127.0.0.1:0", show_default=True, metavar="HOST:PORT",
              help="Address to serve HTTPS on (port 0 picks a free one).")
@click.option("--tls-dir", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Where the CA (DIR/ca.pem) and server certificate are written.")
@click.option("--password-file", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="File holding the admin password (first line).")
@click.option("--user", default="admin", show_default=True, help="Basic-auth user name.")
@click.option("--seed", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="JSON/YAML file replacing parts of the seeded cluster (cluster, nodes, aggregates, svms).")
@click.option("--state-file", type=click.Path(dir_okay=False), metavar="FILE",
              help="Keep the cluster state in FILE so that it survives a restart.")
@click.option("--data-dir", type=click.Path(file_okay=False), metavar="DIR",
              help="Volume directories DIR/<svm>/<volume>/ [default: next to the state file, or a temp dir].")
def sim_ontap(listen: str, tls_dir: str, password_file: str, user: str, seed: str | None,
              state_file: str | None, data_dir: str | None) -> None:
    """Serve the ONTAP REST simulator over HTTPS until SIGINT/SIGTERM; prints its URL once ready."""
    from labctl.sim import SimConfigError, serve

    try:
        serve(listen, tls_dir, password_file, username=user, seed=seed, state_file=state_file,
              data_dir=data_dir)
    except SimConfigError as exc:
        raise UsageError(str(exc), where="labctl sim ontap",
                         fix="check --listen, --password-file and --seed") from exc


COMMANDS = [sim]
