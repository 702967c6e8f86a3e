"""The one-retraining-at-a-time lock on real Redis: queued by /retrain, claimed by the trainer,
refused to a second run, freed by its owner or by expiry when a trainer dies."""
import time

from service.retrain_lock import LockKeeper, RetrainLock


def test_a_second_run_is_refused_while_the_first_holds_the_lock_and_accepted_after_release(redis_client):
    lock = RetrainLock(redis_client)
    first = lock.acquire(60, requested_by=1)
    assert first and lock.holder()["requested_by"] == 1 and lock.holder()["state"] == "queued"
    assert lock.acquire(60, requested_by=2) is None

    assert not lock.release("someone-else") and lock.holder()["token"] == first
    assert lock.release(first) and lock.holder() is None
    assert lock.acquire(60, requested_by=2)


def test_the_trainer_claims_the_queued_lock_refreshes_it_and_releases_it(redis_client):
    lock = RetrainLock(redis_client)
    token = lock.acquire(60, requested_by=1)
    keeper = LockKeeper(lock, token, ttl_s=3)
    assert keeper.claim(version="v2")
    assert lock.holder()["state"] == "running" and lock.holder()["requested_by"] == 1
    keeper.note(progress="epoch 1/3")
    time.sleep(4.5)  # longer than the TTL: only the refreshes keep it
    assert lock.holder()["progress"] == "epoch 1/3"
    assert not LockKeeper(lock, "another-run", ttl_s=3).claim()
    keeper.release()
    assert lock.holder() is None


def test_a_lock_whose_trainer_died_frees_itself_and_a_run_whose_queued_lock_expired_retakes_it(redis_client):
    lock = RetrainLock(redis_client)
    dead = lock.acquire(1)
    time.sleep(1.5)
    assert lock.holder() is None and lock.acquire(60) is not None
    redis_client.flushdb()
    late = LockKeeper(lock, dead, ttl_s=5)
    assert late.claim()  # its own queued lock expired while it waited: nobody else holds it, so it runs
    late.release()
