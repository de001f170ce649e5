"""Volume move: `PATCH volume movement.destination_aggregate` starts a move (a job); `movement.state` then
goes queued → replicating → cutover → success, one step per read of the volume, with `percent_complete`."""

from __future__ import annotations

from typing import Any

from labctl.sim.exceptions import FieldNotSettable, InvalidValue, OntapApiError
from labctl.sim.models.base import Record
from labctl.sim.models.storage import StorageMixin

# ONTAP's states of a move (SDK volume_movement.state) that a move runs through, with its progress.
STEPS = (("queued", 0), ("replicating", 50), ("cutover", 90), ("success", 100))
RUNNING = {state for state, _ in STEPS[:-1]}


class MoveMixin(StorageMixin):
    """Moves of FlexVols between aggregates (FlexGroups move constituent by constituent: not simulated)."""

    def _advance_move(self, volume: Record) -> None:
        movement = volume.get("movement")
        if not movement or movement.get("state") not in RUNNING:
            return
        index = [state for state, _ in STEPS].index(movement["state"]) + 1
        movement["state"], movement["percent_complete"] = STEPS[index]
        if movement["state"] == "success":
            aggr = self.find_aggregate({"uuid": movement["destination_aggregate"]["uuid"]})
            volume["aggregates"] = [self.ref(aggr)]
            node = self.node_by_name(aggr["node"]["name"]) or aggr["node"]
            volume["nodes"] = [self.ref(node)]

    def render_volume(self, volume: Record) -> Record:
        """The volume; a read moves a running move on by one state."""
        self._advance_move(volume)
        return super().render_volume(volume)

    def patch_volume(self, vol_uuid: str, body: dict[str, Any]) -> str:
        """A volume PATCH; `movement.destination_aggregate` starts a move (its own job)."""
        if "movement" not in body:
            return super().patch_volume(vol_uuid, body)
        volume = self.find_volume(vol_uuid)
        movement = body["movement"] if isinstance(body["movement"], dict) else {}
        for key in movement:
            if key not in ("destination_aggregate", "cutover_window", "tiering_policy"):
                raise FieldNotSettable(f"movement.{key}")
        if "destination_aggregate" not in movement:
            raise InvalidValue("movement", body["movement"])
        aggr = self.find_aggregate(movement["destination_aggregate"])
        if volume["style"] == "flexgroup":  # code invented: see docs/simulator.md
            raise OntapApiError("Volume move is not supported on a FlexGroup volume; move its constituents.",
                                code="13107380", target="movement.destination_aggregate")
        if volume.get("movement", {}).get("state") in RUNNING:
            raise OntapApiError(f"Volume \"{volume['name']}\" is already being moved.", code="13107406",
                                target="movement")  # another volume operation in progress (manila)
        if volume["aggregates"][0]["uuid"] == aggr["uuid"]:
            raise OntapApiError(f"Volume \"{volume['name']}\" is already in aggregate \"{aggr['name']}\".",
                                code="13107382", target="movement.destination_aggregate")  # code invented
        started = {"state": "queued", "percent_complete": 0, "destination_aggregate": self.ref(aggr),
                   "start_time": self.now()}

        def action() -> None:
            volume["movement"] = started

        job = self.submit_job(f"PATCH /api/storage/volumes/{vol_uuid}", action)
        rest = {k: v for k, v in body.items() if k != "movement"}
        return super().patch_volume(vol_uuid, rest) if rest else job
