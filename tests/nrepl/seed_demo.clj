;; seed_demo.clj — the seed demo through nREPL's own client (Debian's
;; libnrepl-clojure): run by clojure.test.mjs as
;;   clojure -cp /usr/share/java/nrepl.jar seed_demo.clj PORT
;; It prints one line per eval, the label and the combined replies as EDN,
;; for the test to check.
(require '[nrepl.core :as nrepl])

(def port (Integer/parseInt (first *command-line-args*)))

(defn show [label responses]
  (let [r (nrepl/combine-responses responses)]
    (println label (pr-str (select-keys r [:value :err :ex :status :out :ns])))
    (flush)))

(with-open [conn (nrepl/connect :port port)]
  (let [client (nrepl/client conn 60000)
        session (nrepl/client-session client)
        ev (fn [code & {:as extra}]
             (doall (nrepl/message session (merge {:op "eval" :code code} extra))))]
    (show "describe" (doall (nrepl/message client {:op "describe"})))
    (show "def48" (ev "(defn ggg [v] (+ v 48))"))
    (show "call58" (ev "(ggg 10)"))
    (show "def49" (ev "(defn ggg [v] (+ v 49))"))
    (show "call59" (ev "(ggg 10)"))
    (show "error" (ev "(defn ggg [v]\n  (+ v zz))" :file "seed.cljc" :line 1 :column 1))
    ;; read with the Clojure reader, as clients do with values
    (println "values" (pr-str (nrepl/response-values (ev "(ggg 1)"))))))
;; the client reads replies on a future: without this the JVM waits the
;; agent pool's 60 s keep-alive before it exits
(shutdown-agents)
