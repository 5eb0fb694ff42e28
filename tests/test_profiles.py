import pytest

from robustlens.science.profiles import PROFILE_NAMES, ProfileError, get_profile


def test_three_profiles_resolve_to_the_documented_scale():
    assert PROFILE_NAMES == ("smoke", "cpu", "cpu4", "paper")
    smoke, cpu, cpu4, paper = (get_profile(n) for n in PROFILE_NAMES)
    assert smoke.dataset == cpu.dataset == "fashion-mnist" and paper.dataset == "cifar10"
    assert cpu.eps == pytest.approx(0.1) and paper.eps == pytest.approx(8 / 255)
    assert cpu.test_size == 5_000
    assert smoke.train_size < 60_000 and cpu.train_size is None  # the default sees every image
    assert "deepcnn" in cpu.architectures  # a 3x3 conv in every depth decile (test_filters)
    assert all(get_profile(n).traded for n in PROFILE_NAMES)  # each says what it gives up
    assert cpu.pgd_train_alpha == pytest.approx(2.5 * 0.1 / cpu.pgd_train_steps)


def test_the_verdict_profile_is_cpu_with_the_seeds_a_test_needs():
    from robustlens.science import evidence, zoo

    cpu, cpu4 = get_profile("cpu"), get_profile("cpu4")
    assert len(cpu4.seeds) >= evidence.seeds_needed() > len(cpu.seeds)
    # cpu's models are cpu4's first seeds: the same spec, so the same cache entry.
    for seed in cpu.seeds:
        assert zoo.make_spec(cpu, "cnn", "pgd", seed) == zoo.make_spec(cpu4, "cnn", "pgd", seed)
    assert "four seeds per model" in cpu4.traded and "two seeds" not in cpu4.traded


def test_overrides_are_typed_from_strings():
    p = get_profile(
        "smoke", eps="0.05", epochs="2", seeds="0,1,2", train_size="all", augment="true"
    )
    assert p.eps == 0.05 and p.epochs == 2 and p.seeds == (0, 1, 2)
    assert p.train_size is None and p.augment is True


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"eps": -0.1}, "eps=-0.1 is impossible"),
        ({"eps": 1.5}, "eps=1.5 is impossible"),
        ({"epochs": 0}, "epochs=0"),
        ({"arch": "vgg"}, "unknown architecture 'vgg'"),
        ({"architectures": "cnn,alexnet"}, "unknown architecture 'alexnet'"),
        ({"pgd_eval_steps": 0}, "PGD needs at least 1 step"),
        ({"train_size": -3}, "train_size=-3"),
        ({"epsilon": 0.1}, "unknown parameter 'epsilon'"),
        ({"eps": "abc"}, "is not a float"),
    ],
)
def test_impossible_parameters_fail_in_one_line(kwargs, needle):
    with pytest.raises(ProfileError) as info:
        get_profile("cpu", **kwargs)
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_unknown_profile_names_the_choices():
    with pytest.raises(
        ProfileError, match="unknown profile 'gpu': choose one of smoke, cpu, cpu4, paper"
    ):
        get_profile("gpu")
