(defn ggg [v] (+ v 48))
