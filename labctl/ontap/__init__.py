"""ONTAP through the netapp-ontap SDK: a scoped session, REST error mapping and retries, and one module per
object (NFS service, export policy, data LIFs, FlexGroup), each with `plan_*` / `ensure_*` / `remove_*`
functions that return `Change` records."""
