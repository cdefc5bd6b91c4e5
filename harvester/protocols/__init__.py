"""One strategy per protocol, all of one shape (:class:`harvester.run.Strategy`): ``harvest(run)``.

Like NatLibFi RecordManager's one class per protocol: :class:`~harvester.protocols.oai.OaiHarvest`,
:class:`~harvester.protocols.files.FileHarvest` and :class:`~harvester.protocols.z3950.ZoomHarvest`
read the member's keys from its ``Source``, drive a client (:mod:`harvester.clients`) and hand
pages to the :class:`~harvester.run.Run`, which keeps the books the same way for all of them.
"""
