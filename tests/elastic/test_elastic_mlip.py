"""ElasticWorkChain with an MLIP node as its potential: a user's model file (here SevenNet-0's checkpoint stored as
if trained by the user) is copied into the job and loaded there. The moduli equal those of the same strain loop run
in this process with SevenNet's own calculator on the original checkpoint."""

from __future__ import annotations

import pytest
from aiida import orm

from aiida_glassml.common import mlip

SEVENN_CALCULATOR = 'sevenn.calculator:SevenNetCalculator'
STRAIN = {'components': ['xx', 'yz'], 'n_steps': 1, 'ftol': 1.0e-2}


@pytest.mark.slow
def test_user_model_file_gives_the_moduli_of_its_own_calculator(python_code, tmp_path):
    from aiida.engine import run_get_node
    from ase.build import bulk
    from sevenn.calculator import SevenNetCalculator

    from aiida_glassml.analysis import elastic
    from aiida_glassml.data.mlip_potential import MlipPotentialData
    from aiida_glassml.workflows.elastic import ElasticWorkChain

    checkpoint = mlip.package_dir('sevenn') / mlip.shipped_model('sevennet', '7net-0')['path']
    user_file = tmp_path / 'my_model.pth'
    user_file.write_bytes(checkpoint.read_bytes())
    potential = MlipPotentialData(calculator=SEVENN_CALCULATOR, model_file=user_file, model_keyword='model').store()
    crystal = bulk('NaCl', 'rocksalt', a=5.6)
    builder = ElasticWorkChain.get_builder_from_protocol(python_code, {'replica_0': orm.StructureData(ase=crystal)},
                                                         potential=potential, engine='ase', protocol='fast',
                                                         overrides={'strain': STRAIN})  # fmt: skip
    results, node = run_get_node(builder)
    assert node.is_finished_ok, node.exit_message
    job = next(n for n in node.called if n.process_label == 'ElasticAseCalculation')
    assert job.inputs.potential.uuid == potential.uuid  # the node itself, not a calculator Dict

    protocol = elastic.StrainProtocol.from_dict(builder.strain.get_dict())
    elastic.run_strain_loop(crystal.copy(), SevenNetCalculator(model=str(checkpoint)), protocol, tmp_path / 'direct',
                            log=None)  # fmt: skip
    table = elastic.read_table((tmp_path / 'direct' / elastic.FILES['table']).read_text(), 'ase')
    direct = elastic.analyse_replicas({'replica_0': table}, protocol.nonlinearity_tolerance)
    moduli = results['moduli'].get_dict()
    for key in ('C11', 'C12', 'C44', 'K'):
        assert moduli[key]['mean'] == pytest.approx(direct[key]['mean'], rel=1e-6), key
    assert 10 < moduli['K']['mean'] < 60  # rock salt NaCl: K ≈ 25 GPa
