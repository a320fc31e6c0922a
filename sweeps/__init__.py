"""The ``sweep`` config group, on Hydra's search path (``pkg://sweeps``): ``sweep/<name>.yaml``
holds one study, its settings and search space, picked with ``+sweep=<name>``. Data only: no logic here."""
