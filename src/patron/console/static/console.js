/* Patron console: progressive enhancements and the charts of every page.
 * Loaded from /static only; chart data comes from <script type="application/json">. */
(function () {
  "use strict";

  var SEGMENT_COLOURS = {
    champions: "#16a34a",
    loyal_customers: "#22c55e",
    potential_loyalists: "#14b8a6",
    new_customers: "#0ea5e9",
    promising: "#6366f1",
    need_attention: "#eab308",
    about_to_sleep: "#f59e0b",
    at_risk: "#f97316",
    cant_lose: "#dc2626",
    hibernating: "#94a3b8"
  };
  var PRIMARY = "#4f46e5";
  var ACCENT = "#f59e0b";

  function autosubmit() {
    var fields = document.querySelectorAll("select[data-autosubmit]");
    Array.prototype.forEach.call(fields, function (field) {
      field.addEventListener("change", function () {
        var form = field.form;
        if (!form) { return; }
        var resets = field.getAttribute("data-resets");  // a choice that makes another field's value meaningless
        if (resets && form.elements[resets]) { form.elements[resets].disabled = true; }
        if (typeof form.requestSubmit === "function") { form.requestSubmit(); } else { form.submit(); }
      });
    });
  }

  /* Buttons with data-confirm ask before their form is sent. */
  function confirmations() {
    var buttons = document.querySelectorAll("button[data-confirm]");
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function (event) {
        if (!window.confirm(button.getAttribute("data-confirm") || "")) { event.preventDefault(); }
      });
    });
  }

  /* The alert-rule form shows only the fields of the chosen kind (all of them without script). */
  function kindFields() {
    var select = document.querySelector("select[data-kind-select]");
    if (!select) { return; }
    var fields = document.querySelectorAll("[data-kinds]");
    function update() {
      Array.prototype.forEach.call(fields, function (field) {
        var kinds = (field.getAttribute("data-kinds") || "").split(" ");
        field.hidden = kinds.indexOf(select.value) < 0;
      });
    }
    select.addEventListener("change", update);
    update();
  }

  function showMessage(container, text) {
    container.textContent = "";
    var message = document.createElement("p");
    message.className = "chart-message";
    message.textContent = text;
    container.appendChild(message);
  }

  function formatters(locale) {
    var whole = new Intl.NumberFormat(locale, { maximumFractionDigits: 0 });
    var money = new Intl.NumberFormat(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
    var compact = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
    var percent = new Intl.NumberFormat(locale, { style: "percent", maximumFractionDigits: 1 });
    return {
      locale: locale,
      whole: function (v) { return whole.format(v); },
      money: function (v) { return money.format(v); },
      compact: function (v) { return compact.format(v); },
      percent: function (v) { return percent.format(v); }
    };
  }

  function trendOption(trend, fmt) {
    return {
      color: [PRIMARY, ACCENT],
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        valueFormatter: function (v) { return fmt.money(v); }
      },
      legend: { top: 0, left: "center", itemGap: 24 },
      grid: { left: 8, right: 8, top: 64, bottom: 4, containLabel: true },
      xAxis: { type: "category", data: trend.periods, axisTick: { alignWithLabel: true } },
      yAxis: [
        { type: "value", name: trend.gmvLabel, nameTextStyle: { align: "left" },
          axisLabel: { formatter: fmt.compact }, splitLine: { lineStyle: { color: "#eef0f4" } } },
        { type: "value", name: trend.ordersLabel, nameTextStyle: { align: "right" },
          axisLabel: { formatter: fmt.compact }, splitLine: { show: false } }
      ],
      series: [
        { name: trend.gmvLabel, type: "bar", yAxisIndex: 0, data: trend.gmv, barMaxWidth: 28,
          itemStyle: { borderRadius: [4, 4, 0, 0] } },
        { name: trend.ordersLabel, type: "line", yAxisIndex: 1, data: trend.orders, smooth: true,
          symbolSize: 7, lineStyle: { width: 3 },
          tooltip: { valueFormatter: function (v) { return fmt.whole(v); } } }
      ]
    };
  }

  function segmentOption(segments, fmt) {
    var rows = segments.keys.map(function (key, i) {
      return { key: key, label: segments.labels[i], members: segments.members[i], share: segments.shares[i] };
    });
    rows.sort(function (a, b) { return a.members - b.members; });
    return {
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          var row = rows[p.dataIndex];
          return row.label + ": " + fmt.whole(row.members) + " (" + fmt.percent(row.share) + ")";
        }
      },
      grid: { left: 8, right: 72, top: 8, bottom: 4, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: fmt.compact }, splitLine: { lineStyle: { color: "#eef0f4" } } },
      yAxis: { type: "category", data: rows.map(function (r) { return r.label; }), axisTick: { show: false } },
      series: [{
        name: segments.seriesLabel,
        type: "bar",
        barMaxWidth: 22,
        data: rows.map(function (r) {
          return { value: r.members, itemStyle: { color: SEGMENT_COLOURS[r.key] || PRIMARY, borderRadius: [0, 4, 4, 0] } };
        }),
        label: {
          show: true,
          position: "right",
          formatter: function (p) { return fmt.percent(rows[p.dataIndex].share); },
          color: "#4b5563"
        }
      }]
    };
  }

  function drawCharts() {
    var source = document.getElementById("dashboard-data");
    if (!source) { return; }
    var data = JSON.parse(source.textContent || "{}");
    var trendBox = document.getElementById("trend-chart");
    var segmentBox = document.getElementById("segment-chart");
    var boxes = [trendBox, segmentBox].filter(Boolean);
    if (typeof window.echarts === "undefined") {
      boxes.forEach(function (box) { showMessage(box, box.getAttribute("data-unavailable") || ""); });
      return;
    }
    var fmt = formatters(data.locale || "en");
    var charts = [];
    if (trendBox) {
      trendBox.textContent = "";
      charts.push(window.echarts.init(trendBox, null, { renderer: "canvas" }));
      charts[charts.length - 1].setOption(trendOption(data.trend, fmt));
    }
    if (segmentBox) {
      segmentBox.textContent = "";
      charts.push(window.echarts.init(segmentBox, null, { renderer: "canvas" }));
      charts[charts.length - 1].setOption(segmentOption(data.segments, fmt));
    }
    window.addEventListener("resize", function () {
      charts.forEach(function (chart) { chart.resize(); });
    });
  }

  /* Pages other than the dashboard: each box [data-chart-kind] is drawn from
   * the entry of the same id in <script type="application/json" id="page-data">. */

  var HEAT = ["#eef2ff", "#c7d2fe", "#818cf8", "#4f46e5", "#312e81"];

  function heatmapOption(data, fmt) {
    var metric = data.metric;
    return {
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        position: "top",
        formatter: function (p) {
          var v = p.value;
          var amount = metric === "revenue" ? fmt.money(v[3]) : fmt.whole(v[3]);
          return data.cohortLabel + " " + data.cohorts[v[1]] + " · " + data.indexLabel + " " + v[0] +
            "<br>" + data.retentionLabel + ": " + fmt.percent(v[2]) + " (" + amount + ")";
        }
      },
      grid: { left: 8, right: 16, top: 8, bottom: 64, containLabel: true },
      xAxis: { type: "category", data: data.indexes, name: data.indexLabel, nameLocation: "middle", nameGap: 28,
               splitArea: { show: true } },
      yAxis: { type: "category", data: data.cohorts, inverse: true, splitArea: { show: true } },
      visualMap: {
        min: 0, max: data.max, dimension: 2, calculable: false, orient: "horizontal", left: "center", bottom: 0,
        itemHeight: 160, inRange: { color: HEAT }, formatter: function (v) { return fmt.percent(v); }
      },
      series: [{
        name: data.retentionLabel,
        type: "heatmap",
        data: data.points,
        label: {
          show: data.cohorts.length <= 16 && data.indexes.length <= 16,
          fontSize: 10,
          formatter: function (p) { return Math.round(p.value[2] * 100); }
        },
        emphasis: { itemStyle: { borderColor: "#111827", borderWidth: 1 } }
      }]
    };
  }

  function histogramOption(data, fmt) {
    return {
      color: [PRIMARY],
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "axis",
        axisPointer: { type: "shadow" },
        formatter: function (items) {
          var i = items[0].dataIndex;
          return data.labels[i] + " · " + fmt.whole(data.counts[i]) + " (" + fmt.percent(data.shares[i]) + ")";
        }
      },
      grid: { left: 8, right: 8, top: 24, bottom: 28, containLabel: true },
      xAxis: { type: "category", data: data.labels, name: data.axisLabel, nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", axisLabel: { formatter: fmt.compact }, splitLine: { lineStyle: { color: "#eef0f4" } } },
      series: [{
        name: data.seriesLabel, type: "bar", data: data.counts, barMaxWidth: 36,
        itemStyle: { borderRadius: [4, 4, 0, 0] },
        label: { show: true, position: "top", color: "#4b5563",
                 formatter: function (p) { return fmt.percent(data.shares[p.dataIndex]); } }
      }]
    };
  }

  function funnelOption(data, fmt) {
    var top = Math.max.apply(null, data.members.concat([1]));
    return {
      color: ["#4f46e5", "#6366f1", "#818cf8", "#a5b4fc", "#c7d2fe", "#e0e7ff"],
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          var i = p.dataIndex;
          var text = data.steps[i] + ": " + fmt.whole(data.members[i]) + " (" + fmt.percent(data.fromFirst[i]) + ")";
          return data.median[i] ? text + "<br>" + data.medianLabel + ": " + data.median[i] : text;
        }
      },
      series: [{
        name: data.seriesLabel,
        type: "funnel",
        sort: "none",
        min: 0,
        max: top,
        minSize: "4%",
        left: "8%", right: "8%", top: 8, bottom: 8,
        gap: 3,
        label: {
          show: true, position: "inside", color: "#fff", fontWeight: 600,
          formatter: function (p) {
            return data.steps[p.dataIndex] + "\n" + fmt.whole(data.members[p.dataIndex]) + " · " +
              fmt.percent(data.fromFirst[p.dataIndex]);
          }
        },
        labelLine: { show: false },
        itemStyle: { borderColor: "#fff", borderWidth: 1 },
        data: data.steps.map(function (step, i) { return { name: step, value: data.members[i] }; })
      }]
    };
  }

  function funnelGroupsOption(data, fmt) {
    return {
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          var group = data.groups[p.seriesIndex];
          return group.label + " · " + data.steps[p.dataIndex] + "<br>" + data.axisLabel + ": " + fmt.percent(p.value) +
            " (" + fmt.whole(group.members[p.dataIndex]) + ")";
        }
      },
      legend: { top: 0, type: "scroll" },
      grid: { left: 8, right: 8, top: 40, bottom: 4, containLabel: true },
      xAxis: { type: "category", data: data.steps },
      yAxis: { type: "value", max: 1, axisLabel: { formatter: fmt.percent },
               splitLine: { lineStyle: { color: "#eef0f4" } } },
      series: data.groups.map(function (group) {
        return { name: group.label, type: "bar", data: group.fromFirst, barMaxWidth: 18 };
      })
    };
  }

  function treemapOption(data, fmt) {
    function share(p) { return p.data && p.data.share !== undefined ? fmt.percent(p.data.share) : ""; }
    return {
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        formatter: function (p) {
          var value = data.measure === "monetary" ? fmt.money(p.value) : fmt.whole(p.value);
          return p.name + ": " + value + " (" + share(p) + ")";
        }
      },
      series: [{
        name: data.seriesLabel,
        type: "treemap",
        roam: false,
        nodeClick: false,
        breadcrumb: { show: false },
        left: 0, right: 0, top: 0, bottom: 0,
        label: { show: true, formatter: function (p) { return p.name + "\n" + share(p); } },
        itemStyle: { borderColor: "#fff", borderWidth: 2, gapWidth: 2 },
        data: data.nodes.map(function (node) {
          return { name: node.name, value: node.value, key: node.key, share: node.share, href: node.href,
                   itemStyle: { color: SEGMENT_COLOURS[node.key] || PRIMARY } };
        })
      }]
    };
  }

  function sharesOption(data, fmt) {
    return {
      color: [PRIMARY, ACCENT],
      textStyle: { fontFamily: "inherit" },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, valueFormatter: function (v) { return fmt.percent(v); } },
      legend: { top: 0 },
      grid: { left: 8, right: 16, top: 36, bottom: 4, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: fmt.percent }, splitLine: { lineStyle: { color: "#eef0f4" } } },
      yAxis: { type: "category", data: data.labels, inverse: true, axisTick: { show: false } },
      series: [
        { name: data.membersLabel, type: "bar", data: data.members, barMaxWidth: 12 },
        { name: data.spendLabel, type: "bar", data: data.spend, barMaxWidth: 12 }
      ]
    };
  }

  var CLUSTER_COLOURS = ["#4f46e5", "#14b8a6", "#f59e0b", "#ec4899", "#0ea5e9", "#84cc16", "#a855f7", "#f97316"];

  function clusterSizesOption(data, fmt) {
    return {
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          var i = p.dataIndex;
          return data.labels[i] + ": " + fmt.whole(data.sizes[i]) + " (" + fmt.percent(data.shares[i]) + ")<br>" +
            data.descriptions[i];
        }
      },
      grid: { left: 8, right: 64, top: 8, bottom: 4, containLabel: true },
      xAxis: { type: "value", axisLabel: { formatter: fmt.compact }, splitLine: { lineStyle: { color: "#eef0f4" } } },
      yAxis: { type: "category", data: data.labels, inverse: true, axisTick: { show: false } },
      series: [{
        name: data.seriesLabel,
        type: "bar",
        barMaxWidth: 26,
        data: data.sizes.map(function (size, i) {
          return { value: size, itemStyle: { color: CLUSTER_COLOURS[data.ids[i] % CLUSTER_COLOURS.length],
                                             borderRadius: [0, 4, 4, 0] } };
        }),
        label: { show: true, position: "right", color: "#4b5563",
                 formatter: function (p) { return fmt.percent(data.shares[p.dataIndex]); } }
      }]
    };
  }

  function silhouetteOption(data, fmt) {
    var decimals = new Intl.NumberFormat(fmt.locale, { minimumFractionDigits: 3, maximumFractionDigits: 3 });
    return {
      textStyle: { fontFamily: "inherit" },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
                 valueFormatter: function (v) { return decimals.format(v); } },
      grid: { left: 8, right: 8, top: 16, bottom: 28, containLabel: true },
      xAxis: { type: "category", data: data.ks, name: data.axisLabel, nameLocation: "middle", nameGap: 28 },
      yAxis: { type: "value", splitLine: { lineStyle: { color: "#eef0f4" } } },
      series: [{
        name: data.seriesLabel,
        type: "bar",
        barMaxWidth: 32,
        data: data.scores.map(function (score, i) {
          var chosen = data.ks[i] === data.chosen;
          return { value: score, itemStyle: { color: chosen ? PRIMARY : "#c7d2fe", borderRadius: [4, 4, 0, 0] } };
        }),
        label: { show: true, position: "top", color: "#4b5563",
                 formatter: function (p) { return decimals.format(p.value); } }
      }]
    };
  }

  function calibrationOption(data, fmt) {
    var series = data.series.map(function (s) {
      return { name: s.label, type: "line", data: s.points, symbolSize: 8, lineStyle: { width: 2 } };
    });
    series.push({ name: data.perfectLabel, type: "line", data: [[0, 0], [1, 1]], symbol: "none",
                  lineStyle: { type: "dashed", color: "#94a3b8", width: 1 }, itemStyle: { color: "#94a3b8" } });
    return {
      color: [PRIMARY, ACCENT],
      textStyle: { fontFamily: "inherit" },
      tooltip: {
        trigger: "item",
        formatter: function (p) {
          return p.seriesName + "<br>" + data.predictedLabel + ": " + fmt.percent(p.value[0]) + "<br>" +
            data.observedLabel + ": " + fmt.percent(p.value[1]);
        }
      },
      legend: { top: 0 },
      grid: { left: 32, right: 16, top: 40, bottom: 28, containLabel: true },
      xAxis: { type: "value", min: 0, max: 1, name: data.predictedLabel, nameLocation: "middle", nameGap: 28,
               axisLabel: { formatter: fmt.percent }, splitLine: { lineStyle: { color: "#eef0f4" } } },
      yAxis: { type: "value", min: 0, max: 1, name: data.observedLabel, nameLocation: "middle", nameGap: 44,
               nameRotate: 90, axisLabel: { formatter: fmt.percent }, splitLine: { lineStyle: { color: "#eef0f4" } } },
      series: series
    };
  }

  function kpiDailyOption(data, fmt) {
    var format = data.money ? fmt.money : (data.share ? fmt.percent : fmt.whole);
    return {
      color: [PRIMARY, "#dc2626"],
      textStyle: { fontFamily: "inherit" },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return format(v); } },
      legend: { top: 0 },
      grid: { left: 8, right: 16, top: 40, bottom: 48, containLabel: true },
      dataZoom: [{ type: "inside" }, { type: "slider", height: 18, bottom: 8 }],
      xAxis: { type: "category", data: data.days, boundaryGap: false },
      yAxis: { type: "value", axisLabel: { formatter: data.share ? fmt.percent : fmt.compact },
               splitLine: { lineStyle: { color: "#eef0f4" } } },
      series: [
        { name: data.seriesLabel, type: "line", data: data.values, showSymbol: false, lineStyle: { width: 2 },
          areaStyle: { opacity: 0.08 } },
        { name: data.firedLabel, type: "scatter", data: data.fired, symbolSize: 12,
          itemStyle: { color: "#dc2626", borderColor: "#fff", borderWidth: 2 } }
      ]
    };
  }

  function forecastOption(data, fmt) {
    var decimal = new Intl.NumberFormat(fmt.locale, { maximumFractionDigits: 1 });
    return {
      color: ["#64748b", PRIMARY, ACCENT],
      textStyle: { fontFamily: "inherit" },
      tooltip: { trigger: "axis", valueFormatter: function (v) { return v === null || v === undefined ? "—" : decimal.format(v); } },
      legend: { top: 0 },
      grid: { left: 8, right: 16, top: 40, bottom: 8, containLabel: true },
      xAxis: { type: "category", data: data.days, boundaryGap: false },
      yAxis: { type: "value", name: data.unitsLabel, splitLine: { lineStyle: { color: "#eef0f4" } } },
      series: [
        { name: data.historyLabel, type: "line", data: data.history, showSymbol: false, lineStyle: { width: 2 },
          markArea: data.start ? { silent: true, itemStyle: { color: "rgba(79, 70, 229, 0.06)" },
                                   data: [[{ xAxis: data.start }, { xAxis: data.days[data.days.length - 1] }]] } : undefined },
        { name: data.forecastLabel, type: "line", data: data.forecast, showSymbol: false, lineStyle: { width: 3 } },
        { name: data.baselineLabel, type: "line", data: data.baseline, showSymbol: false,
          lineStyle: { width: 2, type: "dashed" } }
      ]
    };
  }

  var BUILDERS = {
    "cohort-heatmap": heatmapOption,
    "interval-histogram": histogramOption,
    "funnel": funnelOption,
    "funnel-groups": funnelGroupsOption,
    "segment-treemap": treemapOption,
    "segment-shares": sharesOption,
    "cluster-sizes": clusterSizesOption,
    "cluster-silhouette": silhouetteOption,
    "calibration": calibrationOption,
    "kpi-daily": kpiDailyOption,
    "forecast": forecastOption
  };

  function linkTreemap(chart) {
    chart.on("click", function (p) {
      if (p.data && p.data.href) { window.location.assign(p.data.href); }
    });
  }

  function drawPageCharts() {
    var source = document.getElementById("page-data");
    if (!source) { return; }
    var page = JSON.parse(source.textContent || "{}");
    var boxes = Array.prototype.slice.call(document.querySelectorAll("[data-chart-kind]"));
    if (typeof window.echarts === "undefined") {
      boxes.forEach(function (box) { showMessage(box, box.getAttribute("data-unavailable") || ""); });
      return;
    }
    var fmt = formatters(page.locale || "en");
    var charts = [];
    boxes.forEach(function (box) {
      var build = BUILDERS[box.getAttribute("data-chart-kind")];
      var data = (page.charts || {})[box.id];
      if (!build || !data) { return; }
      box.textContent = "";
      if (data.cohorts) {  // a heatmap row per cohort: grow with the cohorts, never squeeze them
        box.style.height = Math.max(320, data.cohorts.length * 18 + 110) + "px";
      }
      var chart = window.echarts.init(box, null, { renderer: "canvas" });
      chart.setOption(build(data, fmt));
      if (box.getAttribute("data-chart-kind") === "segment-treemap") { linkTreemap(chart); }
      box.setAttribute("data-chart-drawn", "true");
      charts.push(chart);
    });
    window.addEventListener("resize", function () {
      charts.forEach(function (chart) { chart.resize(); });
    });
  }

  function ready(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  ready(function () {
    autosubmit();
    confirmations();
    kindFields();
    drawCharts();
    drawPageCharts();
  });
})();
