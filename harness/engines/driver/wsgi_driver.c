/*
 * wsgi_driver: makes and ends Python interpreters around a WSGI app in one process, without Apache,
 * one step at a time as the harness asks.
 *
 * mod_wsgi >= 2.0 never destroys a sub-interpreter and makes a new one inside a live process, but
 * mod_wsgi 1.x did (WSGIReloadMechanism Interpreter), and the Apache parent finalizes and
 * re-initializes Python on a restart. Extension modules that keep pointers into the first
 * interpreter in C statics (Pyrex, single-phase init) break exactly there. This program repeats
 * those transitions while the harness watches from outside: a crash here kills only this process,
 * and the harness starts a fresh one for the next cycle, as Apache restarts a dead daemon.
 *
 *   interpreter-cycle:   Py_EndInterpreter the app's interpreter, Py_NewInterpreter the next one.
 *   interpreter-overlap: the next interpreter loads while the previous lives; then the previous ends
 *                        and the new one is probed again (a reload with a request in flight).
 *   interpreter-parallel: two interpreters, each loading and probing the app on a thread of its own at
 *                        the same time (with an own GIL each: true parallelism); ended, and two new ones.
 *   finalize-reinit:     Py_Finalize, then Py_Initialize.
 *
 * KIND says how sub-interpreters are made: "legacy" (Py_NewInterpreter, shared GIL, as mod_wsgi) or
 * "isolated" (Py_NewInterpreterFromConfig with a GIL of its own and check_multi_interp_extensions,
 * Python >= 3.12), which refuses extension modules that do not declare multi-interpreter support.
 *
 * The loading and probing are done by a small Python file (the "host") run in each interpreter; this
 * file only makes and unmakes interpreters and says, before each step, which step it is on (one JSON
 * line appended to the progress file, one line on stderr), so a death can be placed in its step.
 *
 * usage: wsgi_driver MODE KIND PROGRAM HOST PROGRESS
 *   PROGRAM   the Python executable whose prefix and site the interpreters take (Py_SetProgramName)
 *   HOST      the Python file run in each interpreter
 *   PROGRESS  file the step lines are appended to (the host appends its results there too)
 * commands, one per line on stdin:
 *   load N PHASE [quiet]  start Python if it is not running, make the app's first interpreter, run the host
 *                   (quiet: load the app without probing it, as a restarted daemon preloads it)
 *   reload N PHASE  the mode's transition, then the host in the new interpreter
 *   stop N          end what lives, finalize, exit 0
 * exit: 0 stopped (or stdin closed); 2 usage; 3 the host itself failed; 4 an interpreter could not
 * be made; 5 a command it does not know.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum mode { INTERPRETER_CYCLE, INTERPRETER_OVERLAP, INTERPRETER_PARALLEL, FINALIZE_REINIT };

static int progress_fd = -1;
static enum mode mode;
static int isolated;
static const char *source;
static const char *host_path;
static int python_running;
static PyThreadState *main_state; /* the main interpreter's, while Python runs */
static PyThreadState *app_state;  /* the app's sub-interpreter, if it has one */
static PyThreadState *twin_state; /* interpreter-parallel: the second interpreter */

/* One step line to the progress file and to stderr, written with write(2) so that nothing is left
 * in a buffer when the next step kills the process. */
static void mark(int cycle, const char *phase, const char *step)
{
    char line[256];
    int length = snprintf(line, sizeof line, "{\"cycle\": %d, \"phase\": \"%s\", \"step\": \"%s\"}\n", cycle,
                          phase, step);
    if (length <= 0 || length >= (int)sizeof line)
        return;
    if (write(progress_fd, line, (size_t)length) < 0) {
        /* nothing to do: the harness reads what there is */
    }
    length = snprintf(line, sizeof line, "[wh-driver] cycle %d %s: %s\n", cycle, phase, step);
    if (length > 0 && length < (int)sizeof line && write(STDERR_FILENO, line, (size_t)length) < 0) {
    }
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "rb");
    char *text;
    long size;
    if (file == NULL)
        return NULL;
    if (fseek(file, 0, SEEK_END) != 0 || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET) != 0) {
        fclose(file);
        return NULL;
    }
    text = malloc((size_t)size + 1);
    if (text != NULL && fread(text, 1, (size_t)size, file) != (size_t)size) {
        free(text);
        text = NULL;
    }
    if (text != NULL)
        text[size] = '\0';
    fclose(file);
    return text;
}

static PyObject *text_object(const char *value)
{
#if PY_MAJOR_VERSION >= 3
    return PyUnicode_FromString(value);
#else
    return PyString_FromString(value);
#endif
}

static int set_global(PyObject *globals, const char *name, PyObject *value)
{
    int failed;
    if (value == NULL)
        return -1;
    failed = PyDict_SetItemString(globals, name, value);
    Py_DECREF(value);
    return failed;
}

/* Run the host in the current interpreter's __main__, telling it the cycle, phase and task: "load"
 * (load the app and probe it) or "probe-again" (probe the app this interpreter loaded before). */
static int run_host(int cycle, const char *phase, const char *task)
{
    PyObject *main_module = PyImport_AddModule("__main__"); /* borrowed */
    PyObject *globals, *code, *result;
    mark(cycle, phase, "host");
    if (main_module == NULL) {
        PyErr_Print();
        return -1;
    }
    globals = PyModule_GetDict(main_module);
    if (PyDict_GetItemString(globals, "__builtins__") == NULL &&
        PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) != 0) {
        PyErr_Print();
        return -1;
    }
    if (set_global(globals, "WH_CYCLE", PyLong_FromLong(cycle)) != 0 ||
        set_global(globals, "WH_PHASE", text_object(phase)) != 0 ||
        set_global(globals, "WH_TASK", text_object(task)) != 0) {
        PyErr_Print();
        return -1;
    }
    code = Py_CompileString(source, host_path, Py_file_input);
    if (code == NULL) {
        PyErr_Print();
        return -1;
    }
#if PY_MAJOR_VERSION >= 3
    result = PyEval_EvalCode(code, globals, globals);
#else
    result = PyEval_EvalCode((PyCodeObject *)code, globals, globals);
#endif
    Py_DECREF(code);
    if (result == NULL) {
        PyErr_Print();
        return -1;
    }
    Py_DECREF(result);
    return 0;
}

static void set_program(const char *program)
{
#if PY_MAJOR_VERSION >= 3
    /* Deliberately never freed: Python keeps the pointer for the life of the process. */
    wchar_t *wide = Py_DecodeLocale(program, NULL);
    if (wide != NULL)
        Py_SetProgramName(wide);
#else
    Py_SetProgramName((char *)program);
#endif
}

static void start_python(int cycle, const char *phase)
{
    mark(cycle, phase, "initialize");
    Py_InitializeEx(0); /* no signal handlers: SIGINT/SIGTERM from the harness must end the process */
#if PY_VERSION_HEX < 0x03070000
    PyEval_InitThreads(); /* as mod_wsgi does; implicit from 3.7 */
#endif
    main_state = PyThreadState_Get();
    python_running = 1;
}

static void finalize_python(int cycle, const char *phase)
{
    mark(cycle, phase, "finalize");
    Py_Finalize();
    python_running = 0;
    main_state = NULL;
}

/* A new sub-interpreter, made current; NULL (with the reason on stderr) when it cannot be made. */
static PyThreadState *new_interpreter(int cycle, const char *phase)
{
    mark(cycle, phase, "new-interpreter");
#if PY_VERSION_HEX >= 0x030C0000
    if (isolated) {
        PyThreadState *made = NULL;
        PyInterpreterConfig config = {
            .use_main_obmalloc = 0,
            .allow_fork = 0,
            .allow_exec = 0,
            .allow_threads = 1,
            .allow_daemon_threads = 0,
            .check_multi_interp_extensions = 1,
            .gil = PyInterpreterConfig_OWN_GIL,
        };
        PyStatus status = Py_NewInterpreterFromConfig(&made, &config);
        if (PyStatus_Exception(status)) {
            fprintf(stderr, "[wh-driver] Py_NewInterpreterFromConfig failed in cycle %d: %s\n", cycle,
                    status.err_msg ? status.err_msg : "no message");
            return NULL;
        }
        return made;
    }
#endif
    {
        PyThreadState *made = Py_NewInterpreter();
        if (made == NULL)
            fprintf(stderr, "[wh-driver] Py_NewInterpreter failed in cycle %d\n", cycle);
        return made;
    }
}

/* End a sub-interpreter: it must be current; afterwards the main interpreter is. */
static void end_interpreter(PyThreadState *state, int cycle, const char *phase)
{
    mark(cycle, phase, "end-interpreter");
    PyThreadState_Swap(state);
    Py_EndInterpreter(state);
    PyThreadState_Swap(main_state);
}

/* interpreter-parallel: each worker thread gets a thread state of its own in one interpreter and runs the
 * host there while the other worker runs it in the other interpreter. */
struct worker {
    PyThreadState *interpreter_state; /* the state the interpreter was made with: names the interpreter */
    int cycle;
    const char *phase;
    const char *task;
    int status;
};

static void *run_worker(void *argument)
{
    struct worker *work = argument;
#if PY_VERSION_HEX >= 0x03090000
    PyThreadState *mine = PyThreadState_New(PyThreadState_GetInterpreter(work->interpreter_state));
#else
    PyThreadState *mine = PyThreadState_New(work->interpreter_state->interp);
#endif
    PyEval_RestoreThread(mine);
    work->status = run_host(work->cycle, work->phase, work->task) == 0 ? 0 : 3;
    PyThreadState_Clear(mine);
    PyThreadState_DeleteCurrent();
    return NULL;
}

/* Two new interpreters made by this thread, then released, so the workers can take them. */
static int make_twins(int cycle, const char *phase)
{
    app_state = new_interpreter(cycle, phase);
    if (app_state == NULL)
        return 4;
    PyEval_SaveThread();
    PyEval_RestoreThread(main_state);
    twin_state = new_interpreter(cycle, phase);
    if (twin_state == NULL)
        return 4;
    PyEval_SaveThread();
    return 0;
}

static int run_twins(int cycle, const char *phase, const char *task)
{
    struct worker first = {app_state, cycle, phase, task, 0}, second = {twin_state, cycle, phase, task, 0};
    pthread_t one, two;
    if (pthread_create(&one, NULL, run_worker, &first) != 0 || pthread_create(&two, NULL, run_worker, &second) != 0) {
        fprintf(stderr, "[wh-driver] cannot start the worker threads in cycle %d\n", cycle);
        return 3;
    }
    pthread_join(one, NULL);
    pthread_join(two, NULL);
    PyEval_RestoreThread(main_state);
    return first.status ? first.status : second.status;
}

static void end_twins(int cycle, const char *phase)
{
    if (app_state != NULL)
        end_interpreter(app_state, cycle, phase);
    if (twin_state != NULL)
        end_interpreter(twin_state, cycle, phase);
    app_state = twin_state = NULL;
}

static int do_load(int cycle, const char *phase, const char *task)
{
    if (!python_running)
        start_python(cycle, phase);
    if (mode == FINALIZE_REINIT)
        return run_host(cycle, phase, task) == 0 ? 0 : 3;
    if (mode == INTERPRETER_PARALLEL) {
        int status = make_twins(cycle, phase);
        return status ? status : run_twins(cycle, phase, task);
    }
    app_state = new_interpreter(cycle, phase);
    if (app_state == NULL)
        return 4;
    return run_host(cycle, phase, task) == 0 ? 0 : 3;
}

static int do_reload(int cycle, const char *phase)
{
    PyThreadState *next;
    if (mode == FINALIZE_REINIT) {
        finalize_python(cycle, phase);
        start_python(cycle, phase);
        return run_host(cycle, phase, "load") == 0 ? 0 : 3;
    }
    if (mode == INTERPRETER_PARALLEL) {
        int status;
        end_twins(cycle, phase);
        status = make_twins(cycle, phase);
        return status ? status : run_twins(cycle, phase, "load");
    }
    if (mode == INTERPRETER_CYCLE) {
        if (app_state != NULL)
            end_interpreter(app_state, cycle, phase);
        app_state = new_interpreter(cycle, phase);
        if (app_state == NULL)
            return 4;
        return run_host(cycle, phase, "load") == 0 ? 0 : 3;
    }
    /* interpreter-overlap: the next one loads while the previous lives; then the previous ends under
     * the new one's feet and the new one serves again. Extension modules both imported are shared
     * across that ending. */
    next = new_interpreter(cycle, phase);
    if (next == NULL)
        return 4;
    if (run_host(cycle, phase, "load") != 0)
        return 3;
    if (app_state != NULL)
        end_interpreter(app_state, cycle, phase);
    app_state = next;
    PyThreadState_Swap(app_state);
    return run_host(cycle, phase, "probe-again") == 0 ? 0 : 3;
}

static int do_stop(int cycle)
{
    if (mode == INTERPRETER_PARALLEL && app_state != NULL)
        end_twins(cycle, "stop");
    if (app_state != NULL) {
        end_interpreter(app_state, cycle, "stop");
        app_state = NULL;
    }
    if (python_running)
        finalize_python(cycle, "stop");
    mark(cycle, "stop", "finished");
    return 0;
}

static enum mode parse_mode(const char *text, int *ok)
{
    *ok = 1;
    if (strcmp(text, "interpreter-cycle") == 0)
        return INTERPRETER_CYCLE;
    if (strcmp(text, "interpreter-overlap") == 0)
        return INTERPRETER_OVERLAP;
    if (strcmp(text, "interpreter-parallel") == 0)
        return INTERPRETER_PARALLEL;
    if (strcmp(text, "finalize-reinit") == 0)
        return FINALIZE_REINIT;
    *ok = 0;
    return INTERPRETER_CYCLE;
}

int main(int argc, char **argv)
{
    char line[256], verb[32], phase[32], option[32];
    char *text;
    int ok, cycle = -1, status = 0;
    if (argc != 6) {
        fprintf(stderr, "usage: %s interpreter-cycle|interpreter-overlap|interpreter-parallel|finalize-reinit "
                        "legacy|isolated "
                        "PROGRAM HOST PROGRESS\n", argv[0]);
        return 2;
    }
    mode = parse_mode(argv[1], &ok);
    if (!ok) {
        fprintf(stderr, "wsgi_driver: unknown mode '%s'\n", argv[1]);
        return 2;
    }
    isolated = strcmp(argv[2], "isolated") == 0;
    if (!isolated && strcmp(argv[2], "legacy") != 0) {
        fprintf(stderr, "wsgi_driver: unknown kind '%s' (legacy, isolated)\n", argv[2]);
        return 2;
    }
#if PY_VERSION_HEX < 0x030C0000
    if (isolated) {
        fprintf(stderr, "wsgi_driver: isolated interpreters need Python 3.12 or later\n");
        return 2;
    }
#endif
    text = read_file(argv[4]);
    if (text == NULL) {
        fprintf(stderr, "wsgi_driver: cannot read the host file %s: %s\n", argv[4], strerror(errno));
        return 2;
    }
    source = text;
    host_path = argv[4];
    progress_fd = open(argv[5], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (progress_fd < 0) {
        fprintf(stderr, "wsgi_driver: cannot open the progress file %s: %s\n", argv[5], strerror(errno));
        return 2;
    }
    set_program(argv[3]);
    setvbuf(stdin, NULL, _IOLBF, 0);
    while (status == 0 && fgets(line, sizeof line, stdin) != NULL) {
        int fields = sscanf(line, "%31s %d %31s %31s", verb, &cycle, phase, option);
        if (strcmp(verb, "load") == 0 && fields >= 3)
            status = do_load(cycle, phase, fields == 4 && strcmp(option, "quiet") == 0 ? "load-quiet" : "load");
        else if (fields == 3 && strcmp(verb, "reload") == 0)
            status = do_reload(cycle, phase);
        else if (fields >= 2 && strcmp(verb, "stop") == 0) {
            status = do_stop(cycle);
            break;
        } else {
            fprintf(stderr, "wsgi_driver: unknown command '%s'\n", line);
            status = 5;
        }
        mark(cycle, fields >= 3 ? phase : "stop", "ready");
    }
    free(text);
    return status;
}
