from mdeberta.threads import SMALL_WIDTH, available_cores, choose_threads


def test_a_setting_wins_then_omp_num_threads_then_the_rule():
    assert choose_threads(3, hidden_size=32, environ={"OMP_NUM_THREADS": "2"}) == 3
    assert choose_threads(0, hidden_size=768, environ={"OMP_NUM_THREADS": "2"}) == 2
    assert choose_threads(0, hidden_size=32, environ={}) == 1  # tiny: one thread


def test_a_wide_model_shares_the_cores_with_processes_and_dataloader_workers():
    cores = available_cores()
    assert choose_threads(0, hidden_size=SMALL_WIDTH, environ={}) == cores
    assert choose_threads(0, hidden_size=768, workers=1, environ={}) == max(1, cores - 1)
    two = {"LOCAL_WORLD_SIZE": "2"}
    assert choose_threads(0, hidden_size=768, environ=two) == max(1, cores // 2)
    assert choose_threads(0, hidden_size=768, workers=99, environ={}) == 1  # at least one
