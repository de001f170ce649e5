"""`labctl sim …`: the ONTAP simulator and the simulated lab (filled in by the simulator and lab issues)."""

from __future__ import annotations

import click

from labctl.errors import UsageError


@click.group("sim")
def sim() -> None:
    """Run labctl's ONTAP simulator and simulated GPU hosts."""


# --- `labctl sim ontap`: the ONTAP REST simulator (its code lives in labctl/sim/) ------------------------
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


# --- simulated lab: `labctl sim up` / `sim down` (the code lives in labctl/testlab/) ------------------------
@sim.command("up")
@click.option("--dir", "lab_dir", required=True, type=click.Path(file_okay=False), help="Lab directory.")
@click.option("--hosts", "n_hosts", default=2, show_default=True, type=click.IntRange(0, 40),
              help="Number of simulated GPU hosts (0 = ONTAP only).")
@click.option("--gpus", default=8, show_default=True, type=click.IntRange(1, 16), help="GPUs per host.")
@click.option("--seed", type=click.Path(dir_okay=False, exists=True), help="Simulator seed file (JSON/YAML).")
@click.option("--llmstudio-repo", metavar="SRC",
              help="Install the real H2O LLM Studio from SRC (git URL or git bundle) instead of the fixture; "
                   "also writes DIR/experiment.llmstudio.yaml (the reference experiment for a CPU).")
@click.option("--llmstudio-version", metavar="TAG",
              help="The release to install (default: the pinned v1.2.0).")
def sim_up_command(lab_dir: str, n_hosts: int, gpus: int, seed: str | None, llmstudio_repo: str | None,
                   llmstudio_version: str | None) -> None:
    """Start the ONTAP simulator and N sshd GPU hosts; write DIR/inventory and DIR/lab.json."""
    from pathlib import Path

    from labctl.errors import LabctlError
    from labctl.testlab.lab import LabError, sim_up

    try:
        lab = sim_up(Path(lab_dir), n_hosts, seed=Path(seed) if seed else None, gpus=gpus,
                     llmstudio_repo=llmstudio_repo, llmstudio_version=llmstudio_version)
    except (LabError, RuntimeError, OSError) as exc:
        raise LabctlError(str(exc), where=f"sim up --dir {lab_dir}",
                          fix=f"see the logs under {lab_dir}; `labctl sim down --dir {lab_dir}` cleans up"
                          ) from exc
    click.echo(f"ONTAP simulator: {lab['ontap']['url']} (pid {lab['ontap']['pid']})")
    for host in lab["hosts"]:
        click.echo(f"host {host['name']}: ssh {host['address']} port {host['port']} (pid {host['pid']})")
    click.echo(f"inventory: {lab['inventory']}")
    if lab.get("experiment_llmstudio"):
        click.echo(f"experiment (real LLM Studio on CPU): {lab['experiment_llmstudio']}")
    click.echo(f"next: labctl -i {lab['inventory']} provision")


@sim.command("down")
@click.option("--dir", "lab_dir", required=True, type=click.Path(file_okay=False), help="Lab directory.")
def sim_down_command(lab_dir: str) -> None:
    """Stop everything `sim up` started in DIR (idempotent)."""
    from pathlib import Path

    from labctl.testlab.lab import sim_down

    stopped = sim_down(Path(lab_dir))
    click.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


COMMANDS = [sim]
