#include "gateway/net/thread_pool.h"

#include <memory>
#include <stop_token>

namespace mailgate {
namespace {

struct WorkItem {
  uv_work_t request;
  std::move_only_function<void()> work;
  std::move_only_function<void()> after;
};

// A Done raced against a timer: whichever comes first answers; the other is ignored.
struct TimedAnswer {
  uv_timer_t timer;
  JobRunner::Done done;
  bool answered = false;

  void answer(std::optional<Verdict> verdict) {
    if (answered) return;
    answered = true;
    uv_timer_stop(&timer);
    auto callback = std::move(done);
    callback(std::move(verdict));
  }
};

struct TimedJob : TimedAnswer {
  Job job;
  std::stop_source stop;  // requested by the timer: the answer went out, the work is abandoned
  std::optional<Verdict> result;
  int owners = 2;  // the pool's after-callback and the timer's close callback

  void release() {
    if (--owners == 0) delete this;
  }
};

struct AwaitState : TimedAnswer {
  bool timer_closed = false;

  // Answers, then closes the timer once; the close callback drops the loop's reference.
  void finish(std::optional<Verdict> verdict) {
    answer(std::move(verdict));
    if (timer_closed) return;
    timer_closed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&timer), [](uv_handle_t* handle) {
      delete static_cast<std::shared_ptr<AwaitState>*>(handle->data);
    });
  }
};

}  // namespace

void UvJobRunner::await(Deferred deferred, Duration timeout, Done done) {
  // Shared by the timer and the subscription: the timer handle is closed when either answers,
  // and the state lives until both the close callback and the subscription let go of it.
  auto state = std::make_shared<AwaitState>();
  state->done = std::move(done);
  uv_timer_init(loop_, &state->timer);
  auto* keep = new std::shared_ptr<AwaitState>(state);  // released in the close callback
  state->timer.data = keep;
  uv_timer_start(
      &state->timer,
      [](uv_timer_t* timer) { (*static_cast<std::shared_ptr<AwaitState>*>(timer->data))->finish(std::nullopt); },
      static_cast<uint64_t>(timeout.count()), 0);
  deferred.subscribe([state](Verdict verdict) { state->finish(std::move(verdict)); });
}

void queueWork(uv_loop_t* loop, std::move_only_function<void()> work, std::move_only_function<void()> after) {
  auto item = std::make_unique<WorkItem>();
  item->work = std::move(work);
  item->after = std::move(after);
  item->request.data = item.get();
  uv_queue_work(
      loop, &item->request,
      [](uv_work_t* request) { static_cast<WorkItem*>(request->data)->work(); },
      [](uv_work_t* request, int) {
        std::unique_ptr<WorkItem> owned(static_cast<WorkItem*>(request->data));
        owned->after();
      });
  item.release();  // owned by the after-callback
}

void UvJobRunner::submit(Job job, Duration timeout, Done done) {
  auto* timed = new TimedJob{};
  timed->job = std::move(job);
  timed->done = std::move(done);
  uv_timer_init(loop_, &timed->timer);
  timed->timer.data = timed;
  uv_timer_start(
      &timed->timer,
      [](uv_timer_t* timer) {
        auto* self = static_cast<TimedJob*>(timer->data);
        self->stop.request_stop();
        self->answer(std::nullopt);
        uv_close(reinterpret_cast<uv_handle_t*>(timer),
                 [](uv_handle_t* handle) { static_cast<TimedJob*>(handle->data)->release(); });
      },
      static_cast<uint64_t>(timeout.count()), 0);
  queueWork(
      loop_,
      [timed] {
        // Timed out while it waited for a pool thread: nobody wants its verdict any more.
        if (timed->stop.stop_requested()) return;
        // A stage's job must not take the process down: a throw is a temporary failure.
        try {
          timed->result = timed->job(timed->stop.get_token());
        } catch (const std::exception& error) {
          timed->result = Verdict::tempFail(Reply::of(451, "4.3.0", "Temporary failure, please try again later"),
                                            std::string("stage failed: ") + error.what());
        }
      },
      [timed] {
        bool timer_open = !timed->answered;
        timed->answer(std::move(timed->result));
        if (timer_open) {
          uv_close(reinterpret_cast<uv_handle_t*>(&timed->timer),
                   [](uv_handle_t* handle) { static_cast<TimedJob*>(handle->data)->release(); });
        }
        timed->release();
      });
}

}  // namespace mailgate
