"""mirrordet.data: dataset YAMLs, label readers, transforms, datasets, collate, loaders, synthetic data.

Modules (import what you need; nothing heavy runs on import):
    dataset_yaml   load_dataset_yaml(name_or_path) -> resolved dataset dict
    labels         YOLO txt labels: load_yolo_records, parse_label_file (+ label_cache, label_report)
    coco           COCO instances JSON: load_coco_records
    transforms     letterbox, HSV, flips (+ augment_affine.random_affine, mosaic.mosaic4)
    dataset        DetectionDataset, build_detection_dataset
    collate        collate_detection
    loader         build_dataloader
    synthetic      generate_shapes, generate_shapes_cls (+ synthetic_draw)
"""
